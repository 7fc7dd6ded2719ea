"""calcache's own exceptions. The Google module adds the ones that carry an HTTP status."""

from __future__ import annotations


class CalcacheError(Exception):
    """Base class of every error calcache raises on purpose."""


class TokenDecryptionError(CalcacheError):
    """A credential's token cannot be decrypted with the configured keys."""


class InvalidTokenData(CalcacheError, ValueError):
    """An OAuth token dict handed to calcache lacks what a background sync needs."""
