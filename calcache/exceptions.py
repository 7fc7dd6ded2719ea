"""calcache's own exceptions: every one derives from ``CalcacheError``; the Google ones carry
Google's HTTP status and reason."""

from __future__ import annotations


class CalcacheError(Exception):
    """Base class of every error calcache raises on purpose."""


class TokenDecryptionError(CalcacheError):
    """A credential's token cannot be decrypted with the configured keys."""


class InvalidTokenData(CalcacheError, ValueError):
    """An OAuth token dict handed to calcache lacks what a background sync needs."""


class RolloutError(CalcacheError, ValueError):
    """A rollout change that is not allowed, with a message for the operator."""


class GoogleError(CalcacheError):
    """Google refused or failed a request. Carries the HTTP status and Google's reason."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"{self.status} {self.reason}".strip() if self.status else self.reason
        return f"{super().__str__()} ({where})" if where else super().__str__()


class SyncTokenExpired(GoogleError):
    """410 Gone: the sync token is void; drop it and run a full sync."""


class RateLimited(GoogleError):
    """429, or 403 rateLimitExceeded / userRateLimitExceeded; ``retry_after`` in seconds if sent."""


class QuotaExceeded(GoogleError):
    """403 quotaExceeded: the project's daily quota is spent; retrying today will not help."""


class CredentialInvalid(GoogleError):
    """The token was refused after a refresh, or the refresh token is revoked (invalid_grant)."""


class CalendarNotFound(GoogleError):
    """404: the calendar (or event) does not exist or is no longer shared with the account."""


class GoogleUnavailable(GoogleError):
    """5xx, a dropped connection or a timeout: transient, retried with backoff."""


class LiveBudgetExceeded(GoogleError):
    """A user's live Google reads for this minute are spent (``CALCACHE_LIVE_CALLS_PER_MINUTE``);
    ``retry_after``: seconds until one is allowed again (at most 60)."""


class GoogleBadRequest(GoogleError):
    """Any other 4xx: our request was wrong; never retried."""
