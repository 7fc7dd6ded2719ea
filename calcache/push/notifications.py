"""Google push notifications: authenticate, route, and hand the work to the runner.

Nothing here calls Google: the answer must come in well under 100 ms.
"""

from __future__ import annotations

import enum
import hmac
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from urllib.parse import unquote

from django.db import transaction
from django.utils import timezone

from calcache.background.runners import get_runner
from calcache.conf import conf
from calcache.models import PushChannel, SelectedCalendar

logger = logging.getLogger("calcache.webhooks")


class Outcome(enum.StrEnum):
    FORBIDDEN = "forbidden"
    SYNC_MESSAGE = "sync message"
    UNKNOWN_CHANNEL = "unknown channel"
    EXPIRED_CHANNEL = "expired channel"
    QUEUED = "queued"
    PENDING = "already queued"
    IGNORED = "ignored"


def token_matches(given: str | None) -> bool:
    expected = conf.webhook_token
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def handle_notification(headers: Mapping[str, str], *, now: datetime | None = None) -> Outcome:
    """Act on one notification's headers (names case-insensitive, as Django gives them)."""
    if not token_matches(headers.get("X-Goog-Channel-Token")):
        return Outcome.FORBIDDEN
    now = now or timezone.now()
    channel_id = headers.get("X-Goog-Channel-Id", "")
    state = headers.get("X-Goog-Resource-State", "")
    channel = (
        PushChannel.objects.select_related("selected_calendar")
        .filter(channel_id=channel_id)
        .first()
    )
    resource_id = headers.get("X-Goog-Resource-Id", "")
    if channel is None:
        if state == "sync":
            # Google sends "sync" as soon as a channel opens, possibly before the
            # PushChannel row that records it is committed: never stop on that.
            return Outcome.UNKNOWN_CHANNEL
        selected = _calendar_of(headers.get("X-Goog-Resource-Uri", ""))
        logger.info("Notification for unknown channel %s; stopping it", channel_id)
        if selected is not None:
            transaction.on_commit(lambda: _submit_stop(selected.pk, channel_id, resource_id))
        return Outcome.UNKNOWN_CHANNEL
    if state == "sync":
        # Sent once when a channel opens; nothing changed, nothing to stop.
        return Outcome.SYNC_MESSAGE
    if channel.stopped_at is not None or channel.expiration <= now:
        # Google keeps sending until the channel is stopped or expires; renewal replaced it.
        logger.info("Notification for stopped or expired channel %s; stopping it", channel_id)
        selected_id = channel.selected_calendar_id
        transaction.on_commit(lambda: _submit_stop(selected_id, channel_id, resource_id))
        return Outcome.EXPIRED_CHANNEL
    number = headers.get("X-Goog-Message-Number") or ""
    PushChannel.objects.filter(pk=channel.pk).update(
        last_message_at=now, last_message_number=int(number) if number.isdigit() else None
    )
    if state not in ("exists", "not_exists"):
        return Outcome.IGNORED
    selected_id = channel.selected_calendar_id
    if _needs_submission(selected_id, now):
        transaction.on_commit(lambda: _submit_sync(selected_id))
        return Outcome.QUEUED
    return Outcome.PENDING


def _submit_stop(selected_id: int, channel_id: str, resource_id: str) -> None:
    try:
        get_runner().submit_stop(selected_id, channel_id, resource_id)
    except Exception:
        # Google keeps sending for it until it expires; the next notification tries again.
        logger.exception("Could not submit stopping channel %s", channel_id)


def _submit_sync(selected_id: int) -> None:
    try:
        get_runner().submit_sync(selected_id)
    except Exception:
        # A broker outage: Google gets its 200 all the same. The mark stays; once older
        # than CALCACHE_DIRTY_GRACE_SECONDS the next notification or the sweep resubmits.
        logger.exception("Could not submit the refresh of calendar %s; left marked", selected_id)


def _needs_submission(selected_id: int, now: datetime) -> bool:
    """Mark the calendar changed. Its background refresh is submitted only by the
    notification that marked it: while the mark stands, one is waiting, and it will see
    this change too (it clears the mark when it starts). A mark older than
    ``CALCACHE_DIRTY_GRACE_SECONDS`` means that refresh was lost: submit again."""
    marked = SelectedCalendar.objects.filter(pk=selected_id, dirty_since__isnull=True).update(
        dirty_since=now
    )
    if marked:
        return True
    lost_before = now - timedelta(seconds=conf.dirty_grace_seconds)
    # Claimed by re-stamping, so of a burst arriving after the grace only one resubmits.
    return bool(
        SelectedCalendar.objects.filter(pk=selected_id, dirty_since__lt=lost_before).update(
            dirty_since=now
        )
    )


def _calendar_of(resource_uri: str) -> SelectedCalendar | None:
    """The selected calendar named in ``.../calendars/{id}/events`` (Google's resource URI)."""
    marker = "/calendars/"
    if marker not in resource_uri:
        return None
    calendar_id = unquote(resource_uri.split(marker, 1)[1].split("/", 1)[0])
    return SelectedCalendar.objects.filter(calendar_id=calendar_id, enabled=True).first()
