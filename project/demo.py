"""``make demo``'s launcher: the Google emulator in the background, the demo set-up (migrate,
the cache table, calcache_demo), then the site; Ctrl-C (or SIGTERM) stops both servers.

    python project/demo.py [--create-admin]

The demo's settings (DEBUG, the emulator's URLs and OAuth client, a database cache) are
made here, given to the set-up command and runserver through the environment, and kept
in ``.env.demo`` (``CALCACHE_DEMO_ENV_FILE``) while the demo runs: project/settings.py
reads that file, so ``manage.py`` in a second shell talks to the demo's emulator and
cache too. They win over the shell's environment in both places, so the site and the
second shell always agree. The file is removed when the demo stops, ignored once its
demo is gone, and a file of that name the demo did not write is never overwritten.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(BASE_DIR / "manage.py")]
START_TIMEOUT = 60.0
DEMO_ENV_FILE = BASE_DIR / ".env.demo"
DEMO_CACHE_TABLE = "calcache_demo_cache"
MARKER = (
    "# Written by `make demo` (project/demo.py, pid {pid}) while it runs; removed when it stops."
)
_MARKER_PID = re.compile(r"^# Written by `make demo` \(project/demo\.py, pid (\d+)\)")


def demo_env_file() -> Path:
    """Where the running demo keeps its settings: ``CALCACHE_DEMO_ENV_FILE`` or ``.env.demo``."""
    return Path(os.environ.get("CALCACHE_DEMO_ENV_FILE") or DEMO_ENV_FILE)


def demo_settings(emulator_url: str) -> dict[str, str]:
    """The environment the demo's processes run with (the emulator's OAuth client makes
    the connect page work; the database cache lets a flag changed from a second shell
    reach the running site, flags.W001)."""
    from calcache.emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    return {
        "DEBUG": "1",
        "CALCACHE_GOOGLE_API_URL": f"{emulator_url}/calendar/v3/",
        "CALCACHE_GOOGLE_TOKEN_URI": f"{emulator_url}/token",
        "CALCACHE_GOOGLE_AUTH_URI": f"{emulator_url}/o/oauth2/auth",
        "CALCACHE_GOOGLE_CLIENT_ID": DEFAULT_CLIENT_ID,
        "CALCACHE_GOOGLE_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "CACHE_URL": f"dbcache://{DEMO_CACHE_TABLE}",
    }


def demo_pid(path: Path) -> int | None:
    """The pid of the demo that wrote ``path``; None when the demo did not write it."""
    try:
        with path.open(encoding="utf-8") as file:
            match = _MARKER_PID.match(file.readline())
    except (OSError, UnicodeDecodeError):
        return None
    return int(match.group(1)) if match else None


def live_demo_env(path: Path) -> bool:
    """Is ``path`` the settings file of a demo that is still running?"""
    pid = demo_pid(path)
    return pid is not None and runs_demo(pid)


def runs_demo(pid: int) -> bool:
    """Is process ``pid`` a running ``demo.py``? Where /proc shows command lines (Linux), a
    killed demo's pid reused by another program is not; elsewhere any live process is."""
    proc = Path("/proc")
    if (proc / "self" / "cmdline").exists():
        try:
            argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:  # no such process, or not ours to look at
            return False
        return any(os.path.basename(arg) == b"demo.py" for arg in argv)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def write_demo_env(path: Path, values: dict[str, str], *, pid: int) -> None:
    """Write the demo's settings to ``path`` for manage.py in other shells; refuse to
    replace a file the demo did not write."""
    if path.exists() and demo_pid(path) is None:
        raise SystemExit(
            f"{path} exists and was not written by the demo; move it away (or set "
            "CALCACHE_DEMO_ENV_FILE to another path) and run `make demo` again."
        )
    lines = [MARKER.format(pid=pid), "# Delete it if no demo is running.", ""]
    lines += [f"{name}={value}" for name, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def remove_demo_env(path: Path, *, pid: int) -> None:
    """Remove the settings file if this demo (``pid``) wrote it."""
    if demo_pid(path) == pid:
        path.unlink(missing_ok=True)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with status {process.returncode} while starting.")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{what} did not answer at {url} within {START_TIMEOUT:.0f} s.")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a child and everything it started (runserver's autoreloader has a child)."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--create-admin", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--emulator-port", type=int, default=8765)
    options = parser.parse_args()
    emulator_url = f"http://{options.host}:{options.emulator_port}"
    site = f"http://{options.host}:{options.port}"
    for port, what in ((options.emulator_port, "the emulator"), (options.port, "the site")):
        if port_in_use(options.host, port):
            print(
                f"Port {port} ({what}) is already in use: is another `make demo` running?",
                file=sys.stderr,
            )
            return 1

    settings_file = demo_env_file()
    demo_env = demo_settings(emulator_url)
    write_demo_env(settings_file, demo_env, pid=os.getpid())
    # The demo's settings over the shell's, as project/settings.py reads .env.demo.
    child_env = {**os.environ, **demo_env}
    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        # Own process groups: Ctrl-C reaches only this launcher, which stops them in order.
        emulator = subprocess.Popen(
            [*MANAGE, "run_google_emulator", "--seed", "demo", "--host", options.host]
            + ["--port", str(options.emulator_port)],
            cwd=BASE_DIR,
            env=child_env,
            start_new_session=True,
        )
        children.append(("the Google emulator", emulator))
        wait_for(f"{emulator_url}/_emulator/clock", emulator, "The Google emulator")

        setup = [*MANAGE, "calcache_demo", "--emulator", emulator_url]
        if options.create_admin:
            setup.append("--create-admin")
        steps = (
            [*MANAGE, "migrate", "--no-input", "-v", "0"],
            [*MANAGE, "createcachetable", DEMO_CACHE_TABLE],
            setup,
        )
        if any(subprocess.run(step, cwd=BASE_DIR, env=child_env).returncode != 0 for step in steps):
            print("The demo set-up failed (see above).", file=sys.stderr)
            return 1

        server = subprocess.Popen(
            [*MANAGE, "runserver", f"{options.host}:{options.port}"],
            cwd=BASE_DIR,
            env=child_env,
            start_new_session=True,
        )
        children.append(("runserver", server))
        wait_for(f"{site}/accounts/login/", server, "The site")
        print(
            "\n"
            f"  calcache demo on {site}/   (Ctrl-C stops it and the emulator)\n"
            f"  My week:    {site}/calendar-cache/me/        logins ada, grace, katherine / demo\n"
            f"  Dashboard:  {site}/calendar-cache/dashboard/ login admin / admin (staff)\n"
            f"  Admin:      {site}/admin/\n"
            f"  Emulator:   {emulator_url}/calendar/v3/\n"
            f"  Settings:   {settings_file} (manage.py in another shell uses the demo's)\n",
            flush=True,
        )
        while True:
            for name, child in children:
                if child.poll() is not None:
                    print(f"{name} exited; stopping the demo.", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping the demo.", flush=True)
        return 0
    finally:
        for _name, child in reversed(children):
            stop(child)
        remove_demo_env(settings_file, pid=os.getpid())


if __name__ == "__main__":
    sys.exit(main())
