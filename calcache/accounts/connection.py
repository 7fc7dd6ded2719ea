"""Connecting Google accounts: storing their tokens and the first calendar selection, and
re-encrypting stored tokens when the keys rotate."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from calcache import signals
from calcache.accounts import crypto
from calcache.exceptions import CredentialInvalid, GoogleError, InvalidTokenData
from calcache.google.client import GoogleCalendarClient
from calcache.models import Credential, Provider, SelectedCalendar

logger = logging.getLogger("calcache.services")

PRIMARY_CALENDAR_ID = "primary"


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


@dataclass(frozen=True)
class _Discovery:
    account_email: str
    primary_id: str
    time_zones: dict[str, str]
    token: dict[str, Any]


DISCOVERY_ATTEMPTS = 2


def _discover_account(token: dict[str, Any]) -> _Discovery | None:
    """Ask Google for the account's primary calendar (its id is the account's address).

    A refused token raises ``CredentialInvalid``; Google being unreachable gives None
    (the caller falls back to the ``primary`` alias, which Google accepts as a
    calendar id).
    """
    client = GoogleCalendarClient(token, max_attempts=DISCOVERY_ATTEMPTS)
    try:
        calendars = client.list_calendars()
    except CredentialInvalid:
        raise
    except GoogleError as exc:
        logger.warning("Calendar discovery failed (%s); selecting the 'primary' alias", exc)
        return None
    primary = next((c for c in calendars if c.primary), None)
    if primary is None:
        return None
    return _Discovery(
        account_email=primary.id.lower(),
        primary_id=primary.id,
        time_zones={c.id: c.time_zone for c in calendars},
        token=client.token,
    )


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
    ``account``, else the id of the primary calendar in Google's calendarList.
    Idempotent per (user, account): a second call updates the token, clears an
    invalid mark and, when ``calendar_ids`` is given, makes exactly those
    calendars enabled (others are disabled, keeping their sync state). With
    ``calendar_ids=None`` a new account gets its primary calendar (discovered
    through calendarList, with its time zone; the ``primary`` alias when Google
    cannot be reached) and an existing one keeps its selection.

    Raises ``InvalidTokenData`` for a token without a refresh token and
    ``CredentialInvalid`` when Google refuses it; nothing is stored then. Once the
    transaction commits, ``calcache.signals.account_connected`` is sent.
    """
    token = _validate_token(token)
    email = (account_email or token.get("account") or "").strip().lower()
    wanted = _clean_calendar_ids(calendar_ids) if calendar_ids is not None else None
    if wanted is not None and not wanted:
        raise ValueError("calendar_ids is empty: pass None for the primary calendar")

    # Google is asked before anything is written: a refused token leaves no trace.
    discovery: _Discovery | None = None
    has_selection = SelectedCalendar.objects.filter(
        credential__user=user, credential__provider=Provider.GOOGLE, credential__account_email=email
    ).exists()
    if not email or (wanted is None and not has_selection):
        discovery = _discover_account(token)
        if discovery is not None:
            email = email or discovery.account_email
            token = discovery.token
    return _save_connection(user=user, token=token, email=email, wanted=wanted, discovery=discovery)


@transaction.atomic
def _save_connection(
    *,
    user: Any,
    token: dict[str, Any],
    email: str,
    wanted: list[str] | None,
    discovery: _Discovery | None,
) -> Credential:
    credential = (
        Credential.objects.select_for_update()
        .filter(user=user, provider=Provider.GOOGLE, account_email=email)
        .first()
    )
    created = credential is None
    if credential is None:
        credential = Credential(user=user, provider=Provider.GOOGLE, account_email=email)
    credential.token = token
    credential.invalid = False
    credential.invalid_reason = ""
    credential.invalidated_at = None
    credential.save()
    signals.send_on_commit(
        signals.account_connected,
        sender=Credential,
        credential=credential,
        user=user,
        created=created,
    )

    existing = {sc.calendar_id: sc for sc in credential.selected_calendars.all()}
    primary_id = discovery.primary_id if discovery else PRIMARY_CALENDAR_ID
    if wanted is None:
        if existing:
            return credential
        wanted = [primary_id]
    for calendar_id in wanted:
        selected = existing.get(calendar_id)
        if selected is None:
            is_primary = calendar_id in (primary_id, PRIMARY_CALENDAR_ID)
            SelectedCalendar.objects.create(
                credential=credential,
                calendar_id=calendar_id,
                is_primary=is_primary,
                time_zone=discovery.time_zones.get(calendar_id, "UTC") if discovery else "UTC",
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
    credential.mark_invalid(reason)


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
