"""Google's error bodies: ``{"error": {"code", "message", "errors": [...], "status"}}``."""

from __future__ import annotations

from typing import Any

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "FAILED_PRECONDITION",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

DEFAULT_MESSAGES = {
    "authError": "Invalid Credentials",
    "notFound": "Not Found",
    "deleted": "Resource has been deleted",
    "fullSyncRequired": "Sync token is no longer valid, a full sync is required.",
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "backendError": "Backend Error",
    "timeRangeEmpty": "The specified time range is empty.",
    "timeRangeTooLong": "The requested time range is too long.",
    "syncTokenWithRequestRestrictions": (
        "Sync token cannot be used with other request restrictions."
    ),
    "invalid": "Invalid Value",
    "badRequest": "Bad Request",
    "duplicate": "The requested identifier already exists.",
    "required": "Required",
}

DOMAINS = {
    "fullSyncRequired": "calendar",
    "timeRangeEmpty": "calendar",
    "timeRangeTooLong": "calendar",
    "syncTokenWithRequestRestrictions": "calendar",
    "rateLimitExceeded": "usageLimits",
    "userRateLimitExceeded": "usageLimits",
    "quotaExceeded": "usageLimits",
}


class ApiError(Exception):
    """An error the emulated API answers with."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str | None = None,
        *,
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message or DEFAULT_MESSAGES.get(reason, reason)
        self.location = location
        self.location_type = location_type
        self.headers = headers or {}
        super().__init__(f"{code} {reason}: {self.message}")

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "domain": DOMAINS.get(self.reason, "global"),
            "reason": self.reason,
            "message": self.message,
        }
        if self.location:
            detail["locationType"] = self.location_type or "parameter"
            detail["location"] = self.location
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [detail],
                "status": STATUS_NAMES.get(self.code, "UNKNOWN"),
            }
        }
