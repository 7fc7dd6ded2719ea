"""Writes a host site calls: connecting accounts and maintaining credentials.

Reads live in ``calcache.selectors``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from calcache import crypto
from calcache.exceptions import InvalidTokenData
from calcache.models import Credential, Provider, SelectedCalendar

PRIMARY_CALENDAR_ID = "primary"
INVALID_REASON_MAX_LENGTH = 500


def _clean_calendar_ids(calendar_ids: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for calendar_id in calendar_ids:
        if not isinstance(calendar_id, str) or not calendar_id.strip():
            raise ValueError(f"calendar_ids must be non-empty strings, got {calendar_id!r}")
        calendar_id = calendar_id.strip()
        if len(calendar_id) > 255:
            raise ValueError(f"calendar id longer than 255 characters: {calendar_id[:40]!r}...")
        if calendar_id not in cleaned:
            cleaned.append(calendar_id)
    return cleaned


def _validate_token(token: Any) -> dict[str, Any]:
    if not isinstance(token, dict):
        raise InvalidTokenData(f"token must be a dict (authorized-user JSON), got {type(token)}")
    if not token.get("refresh_token"):
        raise InvalidTokenData(
            "token has no 'refresh_token': background sync needs offline access "
            "(authorize with access_type=offline)."
        )
    return dict(token)


@transaction.atomic
def connect_google_account(
    *,
    user: Any,
    token: dict[str, Any],
    calendar_ids: list[str] | None = None,
    account_email: str | None = None,
) -> Credential:
    """Store a Google OAuth token for ``user`` and select the calendars to mirror.

    ``token`` is google-auth's authorized-user JSON (``token``, ``refresh_token``,
    ``token_uri``, ``client_id``, ``client_secret``, ``scopes``, ``expiry``); it is
    stored encrypted. The account is ``account_email``, else the token's
    ``account``. Idempotent per (user, account): a second call updates the token,
    clears an invalid mark and, when ``calendar_ids`` is given, makes exactly those
    calendars enabled (others are disabled, keeping their sync state). With
    ``calendar_ids=None`` a new account gets its primary calendar and an existing
    one keeps its selection.
    """
    token = _validate_token(token)
    email = (account_email or token.get("account") or "").strip().lower()
    wanted = _clean_calendar_ids(calendar_ids) if calendar_ids is not None else None
    if wanted is not None and not wanted:
        raise ValueError("calendar_ids is empty: pass None for the primary calendar")

    credential = (
        Credential.objects.select_for_update()
        .filter(user=user, provider=Provider.GOOGLE, account_email=email)
        .first()
    )
    if credential is None:
        credential = Credential(user=user, provider=Provider.GOOGLE, account_email=email)
    credential.token = token
    credential.invalid = False
    credential.invalid_reason = ""
    credential.invalidated_at = None
    credential.save()

    existing = {sc.calendar_id: sc for sc in credential.selected_calendars.all()}
    if wanted is None:
        if existing:
            return credential
        wanted = [PRIMARY_CALENDAR_ID]
    for calendar_id in wanted:
        selected = existing.get(calendar_id)
        if selected is None:
            SelectedCalendar.objects.create(
                credential=credential,
                calendar_id=calendar_id,
                is_primary=calendar_id == PRIMARY_CALENDAR_ID,
            )
        elif not selected.enabled:
            selected.enabled = True
            selected.save(update_fields=["enabled", "updated_at"])
    credential.selected_calendars.exclude(calendar_id__in=wanted).filter(enabled=True).update(
        enabled=False, updated_at=timezone.now()
    )
    return credential


def mark_credential_invalid(*, credential: Credential, reason: str) -> None:
    """Record that Google refused ``credential``; its calendars are skipped until reconnect."""
    credential.invalid = True
    credential.invalid_reason = reason[:INVALID_REASON_MAX_LENGTH]
    credential.invalidated_at = timezone.now()
    credential.save(update_fields=["invalid", "invalid_reason", "invalidated_at", "updated_at"])


def rotate_token_encryption(*, batch_size: int = 500) -> int:
    """Re-encrypt every stored token with the newest key; returns how many were rewritten.

    Run after putting a new key first in ``CALCACHE_ENCRYPTION_KEYS``; then the
    old keys can be removed.
    """
    rotated = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            batch = list(
                Credential.objects.select_for_update()
                .filter(pk__gt=last_pk)
                .order_by("pk")[:batch_size]
            )
            if not batch:
                return rotated
            for credential in batch:
                credential.encrypted_token = crypto.rotate(credential.encrypted_token)
            Credential.objects.bulk_update(batch, ["encrypted_token"])
            rotated += len(batch)
            last_pk = batch[-1].pk
