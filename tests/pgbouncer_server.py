"""A throwaway PgBouncer in front of a PostgreSQL server: Debian's ``pgbouncer`` on a
free loopback port, its config and log in a temporary directory, stopped after.

    bouncer = PgBouncer.start(target_port=5432)   # transaction pooling, 20 per database
    url = bouncer.url("calcache")                  # postgres://postgres@127.0.0.1:<port>/calcache
    bouncer.stop()

Every database name is passed through to the server (a ``*`` entry), so test databases
made through it work. PgBouncer refuses to run as root: when the tests run as root it
runs as the ``postgres`` OS user.
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

from tests.postgres_server import SUPERUSER, free_port
from tests.waiting import wait_for

PROGRAM = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def missing_pgbouncer() -> str:
    """Why a PgBouncer cannot be started here ("" when it can)."""
    if not Path(PROGRAM).exists():
        return "pgbouncer is not installed (Debian package pgbouncer; .ci/run installs it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run pgbouncer"
    return ""


class PgBouncer:
    """One running PgBouncer."""

    def __init__(
        self, *, target_host: str, target_port: int, pool_mode: str, pool_size: int
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="calcache-pgbouncer-"))
        self.port = free_port()
        self.log_file = self.root / "pgbouncer.log"
        (self.root / "userlist.txt").write_text(f'"{SUPERUSER}" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={target_host} port={target_port}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    "unix_socket_dir =",
                    "auth_type = trust",
                    f"auth_file = {self.root / 'userlist.txt'}",
                    f"pool_mode = {pool_mode}",
                    "max_client_conn = 500",
                    f"default_pool_size = {pool_size}",
                    "ignore_startup_parameters = extra_float_digits,options",
                    f"logfile = {self.log_file}",
                    f"pidfile = {self.root / 'pgbouncer.pid'}",
                    "",
                ]
            )
        )
        self._owner = pwd.getpwnam(SUPERUSER) if os.geteuid() == 0 else None
        if self._owner is not None:
            for path in (self.root, *self.root.iterdir()):
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        *,
        target_port: int,
        target_host: str = "127.0.0.1",
        pool_mode: str = "transaction",
        pool_size: int = 20,
    ) -> PgBouncer:
        """Started, and answering on its port. ``pool_size``: server connections per
        database and user."""
        bouncer = cls(
            target_host=target_host,
            target_port=target_port,
            pool_mode=pool_mode,
            pool_size=pool_size,
        )
        owner: dict[str, Any] = {}
        if bouncer._owner is not None:
            owner = {"user": bouncer._owner.pw_uid, "group": bouncer._owner.pw_gid}
            owner["extra_groups"] = []
        bouncer.process = subprocess.Popen(
            [PROGRAM, str(bouncer.root / "pgbouncer.ini")],
            cwd=bouncer.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **owner,
        )
        try:
            wait_for(lambda: bouncer._answers() or not bouncer.running, timeout=60)
            if not bouncer.running:
                raise RuntimeError(f"pgbouncer did not start:\n{bouncer.log()}")
        except BaseException:
            bouncer.stop()
            raise
        return bouncer

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def url(self, database: str) -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
