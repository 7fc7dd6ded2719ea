"""Tokens at rest: encryption round trip, key rotation, secrets kept out of sight."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from calcache.accounts import crypto
from calcache.exceptions import TokenDecryptionError
from calcache.models import Credential
from calcache.services import rotate_token_encryption
from tests.factories import CredentialFactory, google_token

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def test_round_trip_and_ciphertext_hides_the_token() -> None:
    token = google_token()
    ciphertext = crypto.encrypt_json(token)
    assert "refresh-token" not in ciphertext and "ya29" not in ciphertext
    assert crypto.decrypt_json(ciphertext) == token


def test_default_key_is_derived_from_secret_key() -> None:
    with override_settings(SECRET_KEY="a" * 50, CALCACHE_ENCRYPTION_KEYS=[]):
        ciphertext = crypto.encrypt_json({"x": 1})
    with (
        override_settings(SECRET_KEY="b" * 50, CALCACHE_ENCRYPTION_KEYS=[]),
        pytest.raises(TokenDecryptionError, match="SECRET_KEY"),
    ):
        crypto.decrypt_json(ciphertext)
    # the documented way to rotate SECRET_KEY keeps tokens readable
    with override_settings(
        SECRET_KEY="b" * 50, SECRET_KEY_FALLBACKS=["a" * 50], CALCACHE_ENCRYPTION_KEYS=[]
    ):
        assert crypto.decrypt_json(ciphertext) == {"x": 1}


def test_comma_separated_keys_are_accepted() -> None:
    with override_settings(CALCACHE_ENCRYPTION_KEYS=f"{NEW_KEY}, {OLD_KEY}"):
        assert crypto.configured_keys() == [NEW_KEY, OLD_KEY]


@pytest.mark.django_db
def test_key_rotation_re_encrypts_every_credential() -> None:
    with override_settings(CALCACHE_ENCRYPTION_KEYS=[OLD_KEY]):
        credentials = CredentialFactory.create_batch(3)
    before = {c.pk: c.encrypted_token for c in credentials}

    with override_settings(CALCACHE_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        # both keys in force: old tokens still read
        assert Credential.objects.get(pk=credentials[0].pk).token == google_token()
        assert rotate_token_encryption(batch_size=2) == 3

    with override_settings(CALCACHE_ENCRYPTION_KEYS=[NEW_KEY]):
        for credential in Credential.objects.all():
            assert credential.encrypted_token != before[credential.pk]
            assert credential.token == google_token()

    with (
        override_settings(CALCACHE_ENCRYPTION_KEYS=[OLD_KEY]),
        pytest.raises(TokenDecryptionError),
    ):
        _ = Credential.objects.first().token  # type: ignore[union-attr]
