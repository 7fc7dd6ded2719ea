"""run_google_emulator refuses what it cannot listen on, instead of listening elsewhere
or ending in a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[3]


def refused(*args: str) -> CommandError:
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("run_google_emulator", *args, stdout=out, stderr=StringIO())
    assert out.getvalue() == ""  # never "Google Calendar emulator on ..."
    assert caught.value.returncode == 1
    return caught.value


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "abc", "8765.5", ""])
def test_a_port_that_is_not_a_port_is_refused(port: str) -> None:
    # A process of its own: an emulator that did start would serve until the timeout.
    done = subprocess.run(
        [sys.executable, "manage.py", "run_google_emulator", "--port", port],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"CommandError: --port {port!r} is not a port number: give a whole number from 1 "
        "to 65535 (0: any free port), e.g. --port 8765.\n"
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_port_in_use_is_refused(busy_port: int) -> None:
    error = refused("--port", str(busy_port))
    assert str(error) == (
        f"Cannot listen on 127.0.0.1:{busy_port} (Address already in use): another "
        "emulator or `make demo`? Stop it or choose another --port."
    )


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_a_host_it_cannot_bind_is_refused(host: str) -> None:
    error = refused("--host", host, "--port", "0")
    assert str(error).startswith(f"Cannot listen on {host}:0 (")
    assert str(error).endswith(f"{host!r} is not an address of this machine; use 127.0.0.1.")


def test_an_empty_host_is_refused() -> None:
    assert "--host is empty" in str(refused("--host", " "))
