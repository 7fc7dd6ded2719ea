""".ci/system-packages, which `make test` and .ci/run call first: the Debian packages the
suite needs are installed when missing, as root with apt-get, or the run stops early
with the exact command. Run with a PATH of our own making, and a stand-in apt-get."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "system-packages"
BASH = shutil.which("bash") or "/bin/bash"


def run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT)],
        env={"PATH": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def fake_apt_get(bin_dir: Path) -> Path:
    """An apt-get on ``bin_dir`` that only writes down how it was called."""
    calls = bin_dir / "calls"
    apt = bin_dir / "apt-get"
    apt.write_text(f'#!/bin/sh\necho "apt-get $*" >> {calls}\n')
    apt.chmod(0o755)
    return calls


def test_without_root_or_apt_get_it_stops_with_the_command_to_run(tmp_path: Path) -> None:
    done = run(tmp_path)  # no msgfmt, no xgettext, no apt-get on this PATH
    assert done.returncode == 1
    assert "needs Debian packages that are not installed:" in done.stderr
    assert "gettext" in done.stderr
    assert "    sudo apt-get update && sudo apt-get install -y " in done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="installs only as root")
def test_as_root_with_apt_get_it_installs_what_is_missing(tmp_path: Path) -> None:
    calls = fake_apt_get(tmp_path)
    done = run(tmp_path)
    assert done.returncode == 0, done.stderr
    update, *installs = calls.read_text().splitlines()
    assert update == "apt-get update -qq"
    assert installs[0].startswith("apt-get install -y -qq ")
    assert "gettext" in installs[0].split()


@pytest.mark.skipif(
    not (os.access("/usr/bin/chromium", os.X_OK) and shutil.which("msgfmt")),
    reason="this machine lacks the packages itself",
)
def test_with_everything_installed_it_does_nothing(tmp_path: Path) -> None:
    for tool in ("msgfmt", "xgettext", "pgbouncer"):
        found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin")
        if found:
            (tmp_path / tool).symlink_to(found)
    calls = fake_apt_get(tmp_path)
    done = run(tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not calls.exists()
