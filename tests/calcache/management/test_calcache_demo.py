"""The demo preparation command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_creates_admin_only_when_asked_and_only_once() -> None:
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
