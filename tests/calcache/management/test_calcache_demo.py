"""The demo preparation command."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from calcache.emulator import EmulatorClient

pytestmark = pytest.mark.django_db


def test_creates_admin_only_when_asked_and_only_once(settings: Any) -> None:
    settings.DEBUG = True
    User = get_user_model()
    call_command("calcache_demo", stdout=StringIO())
    assert not User.objects.filter(username="admin").exists()
    out = StringIO()
    call_command("calcache_demo", "--create-admin", stdout=out)
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")
    assert "Created superuser" in out.getvalue()
    out = StringIO()
    call_command("calcache_demo", "--create-admin", stdout=out)
    assert "already exists" in out.getvalue()
    assert User.objects.filter(username="admin").count() == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--create-admin"],
        ["--emulator", "EMULATOR"],
        ["--create-admin", "--emulator", "EMULATOR"],
    ],
)
def test_refuses_with_debug_off_and_creates_nobody(
    args: list[str], settings: Any, emulator: EmulatorClient
) -> None:
    settings.DEBUG = False
    emulator.seed_demo()
    args = [emulator.base_url if arg == "EMULATOR" else arg for arg in args]
    out = StringIO()
    with pytest.raises(CommandError, match=r"only with DEBUG on.*make demo.*DEBUG=1") as caught:
        call_command("calcache_demo", *args, stdout=out)
    assert caught.value.returncode == 1
    assert get_user_model().objects.count() == 0
    assert out.getvalue() == ""
