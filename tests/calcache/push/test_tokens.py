"""calcache.push.tokens: per-channel tokens, signed with CALCACHE_WEBHOOK_TOKEN, kept hashed."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from calcache.push.tokens import (
    is_legacy_token,
    is_signed_for,
    matches_hash,
    new_channel_token,
    token_hash,
)

KEY = "the-signing-key"


@pytest.fixture(autouse=True)
def _key(settings: Any) -> None:
    settings.CALCACHE_WEBHOOK_TOKEN = KEY


def test_every_token_is_new_fits_google_and_does_not_carry_the_key() -> None:
    tokens = {new_channel_token("calcache-1") for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(token) <= 256 and KEY not in token for token in tokens)
    assert all(token.isascii() and token.isprintable() for token in tokens)


def test_a_token_is_signed_for_its_channel_only() -> None:
    token = new_channel_token("calcache-1")
    assert is_signed_for(token, "calcache-1")
    assert not is_signed_for(token, "calcache-2")
    nonce, _, mac = token.partition(".")
    assert not is_signed_for(f"{nonce}x.{mac}", "calcache-1")
    assert not is_signed_for(f"{nonce}.{mac[:-1]}", "calcache-1")
    for junk in ("", ".", nonce, f".{mac}", "caf\u00e9.\u00e9"):
        assert not is_signed_for(junk, "calcache-1")


def test_a_signature_needs_the_current_key(settings: Any) -> None:
    token = new_channel_token("calcache-1")
    settings.CALCACHE_WEBHOOK_TOKEN = "another-key"
    assert not is_signed_for(token, "calcache-1")
    settings.CALCACHE_WEBHOOK_TOKEN = ""
    assert not is_signed_for(new_channel_token("calcache-1"), "calcache-1")


def test_the_stored_hash_is_sha256_hex_and_matches_only_its_token() -> None:
    token = new_channel_token("calcache-1")
    stored = token_hash(token)
    assert stored == hashlib.sha256(token.encode()).hexdigest() and len(stored) == 64
    assert token not in stored
    assert matches_hash(token, stored)
    assert not matches_hash(new_channel_token("calcache-1"), stored)
    assert not matches_hash(token, "")  # a channel without a hash has no token of its own


def test_the_legacy_token_is_the_setting_itself(settings: Any) -> None:
    assert is_legacy_token(KEY)
    assert not is_legacy_token(new_channel_token("calcache-1"))
    settings.CALCACHE_WEBHOOK_TOKEN = ""
    assert not is_legacy_token("")
