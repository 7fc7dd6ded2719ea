"""The rotate_encryption_keys command through call_command."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from calcache.models import Credential
from tests.factories import CredentialFactory, google_token

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def test_rotate_encryption_keys_reports_the_count() -> None:
    with override_settings(CALCACHE_ENCRYPTION_KEYS=[OLD_KEY]):
        CredentialFactory.create_batch(2)
    out = StringIO()
    with override_settings(CALCACHE_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        call_command("rotate_encryption_keys", stdout=out)
    assert "Re-encrypted 2 credential token(s)." in out.getvalue()
    with override_settings(CALCACHE_ENCRYPTION_KEYS=[NEW_KEY]):
        assert all(c.token == google_token() for c in Credential.objects.all())


def test_rotate_encryption_keys_without_the_old_key_is_a_command_error() -> None:
    with override_settings(CALCACHE_ENCRYPTION_KEYS=[OLD_KEY]):
        credential = CredentialFactory()
    with (
        override_settings(CALCACHE_ENCRYPTION_KEYS=[NEW_KEY]),
        pytest.raises(CommandError, match="Add the missing key back"),
    ):
        call_command("rotate_encryption_keys")
    credential_after = Credential.objects.get(pk=credential.pk)
    assert credential_after.encrypted_token == credential.encrypted_token


def test_rotate_encryption_keys_rejects_a_bad_batch_size() -> None:
    with pytest.raises(CommandError, match="batch-size"):
        call_command("rotate_encryption_keys", "--batch-size", "0")
