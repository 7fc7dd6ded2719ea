"""Encryption of OAuth tokens at rest (Fernet, with key rotation through MultiFernet).

Keys come from ``CALCACHE_ENCRYPTION_KEYS`` (newest first). Without them one key
is derived from ``SECRET_KEY`` with HKDF; keys derived from
``SECRET_KEY_FALLBACKS`` still decrypt, so rotating Django's secret key the
documented way does not lose connected accounts.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from calcache.conf import conf
from calcache.exceptions import TokenDecryptionError

_HKDF_INFO = b"calcache oauth token encryption v1"


def derive_key(secret: str) -> str:
    """Return a Fernet key derived from ``secret`` (a Django ``SECRET_KEY``)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(raw).decode()


def configured_keys() -> list[str]:
    """The keys in force, the encrypting one first."""
    keys = conf.encryption_keys
    if keys:
        return keys
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [derive_key(secret) for secret in secrets]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in configured_keys()])


def encrypt_json(value: dict[str, Any]) -> str:
    """Serialize ``value`` to JSON and encrypt it with the newest key."""
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(ciphertext: str) -> dict[str, Any]:
    """Decrypt what ``encrypt_json`` produced, with any configured key."""
    try:
        data: dict[str, Any] = json.loads(_fernet().decrypt(ciphertext.encode()))
    except InvalidToken as exc:
        raise TokenDecryptionError(
            "The stored token cannot be decrypted with any key in CALCACHE_ENCRYPTION_KEYS "
            "(or derived from SECRET_KEY / SECRET_KEY_FALLBACKS). Was a key removed too early?"
        ) from exc
    return data


def rotate(ciphertext: str) -> str:
    """Re-encrypt ``ciphertext`` with the newest key (it must decrypt with one of them)."""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise TokenDecryptionError("The stored token cannot be decrypted with any key.") from exc
