"""``make demo``'s launcher: the Google emulator in the background, the demo set-up, then
the site; Ctrl-C (or SIGTERM) stops both servers.

    python project/demo.py [--create-admin]

The CALCACHE_GOOGLE_* variables must point at the emulator (the Makefile sets them); they
reach the set-up command and runserver through the environment.
"""

from __future__ import annotations

import argparse
import os
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
            start_new_session=True,
        )
        children.append(("the Google emulator", emulator))
        wait_for(f"{emulator_url}/_emulator/clock", emulator, "The Google emulator")

        setup = [*MANAGE, "calcache_demo", "--emulator", emulator_url]
        if options.create_admin:
            setup.append("--create-admin")
        if subprocess.run(setup, cwd=BASE_DIR).returncode != 0:
            print("The demo set-up failed (see above).", file=sys.stderr)
            return 1

        server = subprocess.Popen(
            [*MANAGE, "runserver", f"{options.host}:{options.port}"],
            cwd=BASE_DIR,
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
            f"  Emulator:   {emulator_url}/calendar/v3/\n",
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


if __name__ == "__main__":
    sys.exit(main())
