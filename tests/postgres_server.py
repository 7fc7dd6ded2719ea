"""A throwaway PostgreSQL cluster that a test can stop and start: ``initdb`` in a
temporary directory, a free loopback port, trust authentication for ``postgres``.

    server = PostgresServer.create()      # initdb + start
    server.create_database("calcache")
    url = server.url("calcache")          # postgres://postgres@127.0.0.1:<port>/calcache
    server.stop(); server.start()         # same port, same data
    server.remove()                       # stop, delete the directory

Independent of ``DATABASE_URL`` and of the shared server on 5432. When the tests run as
root the cluster belongs to the ``postgres`` OS user (the server refuses to run as
root). ``settings`` become lines of ``postgresql.conf``; ``PostgresServer.replica_of(server)``
is a streaming replica of it (``pg_basebackup -R``), another server that stops and starts
the same way.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

BIN_DIR = Path(os.environ.get("POSTGRES_BIN_DIR", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
# A test cluster: fast and small; durability does not matter.
DEFAULT_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "'32MB'",
    "max_connections": "40",
}


def missing_binaries() -> str:
    """Why a throwaway cluster cannot be made here ("" when it can)."""
    absent = [name for name in ("initdb", "pg_ctl", "postgres") if not (BIN_DIR / name).exists()]
    if absent:
        return f"PostgreSQL server binaries not found in {BIN_DIR} ({', '.join(absent)})"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return "running as root and there is no 'postgres' OS user to own a cluster"
    return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One cluster directory and the port it listens on."""

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        port: int | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="calcache-pg-"))
        self.data_dir = data_dir or self.root / "data"
        self.log_file = self.root / "server.log"
        self.port = port or free_port()
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._owner = pwd.getpwnam(SUPERUSER) if os.geteuid() == 0 else None
        if self._owner is not None:
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)

    @classmethod
    def create(cls, **kwargs: Any) -> PostgresServer:
        """A new cluster, initialised and started."""
        server = cls(**kwargs)
        try:
            server.initdb()
            server.start()
        except BaseException:
            server.remove()
            raise
        return server

    # --- the OS user that owns the cluster -------------------------------------------
    def run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program (a name in ``BIN_DIR``) as the cluster's owner;
        CalledProcessError with its output when it fails."""
        program, *rest = args
        command = [str(BIN_DIR / program), *map(str, rest)]
        owner: dict[str, Any] = {}
        if self._owner is not None:
            owner = {"user": self._owner.pw_uid, "group": self._owner.pw_gid, "extra_groups": []}
        completed = subprocess.run(
            command,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "LC_ALL": "C", "PGPORT": str(self.port)},
            **owner,
        )
        if completed.returncode != 0:
            raise subprocess.CalledProcessError(
                completed.returncode, command, completed.stdout, completed.stderr
            )
        return completed

    # --- lifecycle ---------------------------------------------------------------------
    def initdb(self) -> None:
        self.run(
            "initdb",
            "-D",
            self.data_dir,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        self.configure()

    def configure(self) -> None:
        """Append this server's port, socket directory and ``settings`` to
        ``postgresql.conf`` (the last line of a setting wins)."""
        lines = [f"port = {self.port}", f"unix_socket_directories = '{self.root}'"]
        lines += [f"{name} = {value}" for name, value in self.settings.items()]
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/postgres_server.py\n" + "\n".join(lines) + "\n")

    @classmethod
    def replica_of(cls, primary: PostgresServer, **kwargs: Any) -> PostgresServer:
        """A streaming replica of ``primary`` (``pg_basebackup -R``) on its own port,
        started (read-only, a hot standby)."""
        replica = cls(**kwargs)
        try:
            primary.run(
                "pg_basebackup",
                "-D",
                replica.data_dir,
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",  # a spread checkpoint takes minutes
                "-h",
                "127.0.0.1",
                "-U",
                SUPERUSER,
            )
            replica.configure()
            replica.start()
        except BaseException:
            replica.remove()
            raise
        return replica

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self.run("pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-w", "-t", "120", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop and wait until it is gone. ``fast`` ends open sessions at once (what a
        crash or a failover looks like to a client); ``immediate`` does not even
        checkpoint."""
        self.run("pg_ctl", "-D", self.data_dir, "-m", mode, "-w", "-t", "120", "stop")

    @property
    def running(self) -> bool:
        try:
            self.run("pg_ctl", "-D", self.data_dir, "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def remove(self) -> None:
        """Stop (if running) and delete the cluster's directory."""
        if self.data_dir.exists() and self.running:
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # --- using it ----------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql; its unaligned, tuples-only output."""
        completed = self.run(
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-c",
            sql,
        )
        return completed.stdout.strip()

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        """The server's log so far (for a failing test's message)."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""
