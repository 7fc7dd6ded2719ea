"""Push channel tokens: one random token per channel, signed with ``CALCACHE_WEBHOOK_TOKEN``.

A channel's token (``X-Goog-Channel-Token``) is ``"{nonce}.{mac}"``: a fresh random
nonce and ``HMAC-SHA256(key=CALCACHE_WEBHOOK_TOKEN, msg="{channel_id}.{nonce}")`` in hex.
The ``PushChannel`` row keeps only its SHA-256 (``token_hash``), never the token, so:

- a notification for a channel we keep is accepted only with that channel's token
  (its hash compared with the stored one in constant time); a token leaked from one
  channel opens no other, and a database dump yields no token;
- a notification for a channel we no longer keep (its row deleted) can still be told
  ours by the signature, before a ``channels.stop`` call is spent on it; a forged one
  is refused;
- changing ``CALCACHE_WEBHOOK_TOKEN`` leaves live channels working (their hashes do not
  depend on it); only signatures of channels without a row are checked with the new key.

Channels opened before per-channel tokens have no hash and carry
``CALCACHE_WEBHOOK_TOKEN`` itself; they keep working with it until renewal replaces them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from calcache.conf import conf

NONCE_BYTES = 18  # 24 URL-safe characters; a token is 24 + 1 + 64 = 89 characters


def _signature(channel_id: str, nonce: str, key: str) -> str:
    message = f"{channel_id}.{nonce}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """What ``PushChannel.token_hash`` stores for ``token``: SHA-256 in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_channel_token(channel_id: str) -> str:
    """A fresh token for ``events.watch`` of channel ``channel_id``, signed with
    ``CALCACHE_WEBHOOK_TOKEN``. Without that key (``calcache.E001``) the token still
    guards its own channel, but a notification for it after its row is gone is refused."""
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    return f"{nonce}.{_signature(channel_id, nonce, conf.webhook_token)}"


def matches_hash(given: str, stored_hash: str) -> bool:
    """``given`` is the token whose hash is ``stored_hash`` (constant time)."""
    return bool(stored_hash) and hmac.compare_digest(token_hash(given), stored_hash)


def is_signed_for(given: str, channel_id: str) -> bool:
    """``given`` is a token we issued for ``channel_id`` (constant time): its signature
    verifies with the current ``CALCACHE_WEBHOOK_TOKEN``."""
    key = conf.webhook_token
    nonce, dot, mac = given.partition(".")
    if not key or not dot or not nonce:
        return False
    return hmac.compare_digest(mac.encode(), _signature(channel_id, nonce, key).encode())


def is_legacy_token(given: str) -> bool:
    """``given`` is ``CALCACHE_WEBHOOK_TOKEN`` itself, what channels opened before
    per-channel tokens carry (constant time)."""
    key = conf.webhook_token
    return bool(key) and hmac.compare_digest(given.encode(), key.encode())
