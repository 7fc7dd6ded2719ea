"""Google push notifications: validate, authenticate, route, and hand the work to the runner.

Nothing here calls Google: the answer must come in well under 100 ms. The order is:

1. the headers are read and checked (``parse_notification``): a malformed one (a message
   number beyond a bigint, a channel id longer than the column, anything not printable
   ASCII, a resource URI naming no possible calendar) is ``InvalidNotification``, 400;
2. the token is checked against the channel's own (``calcache.push.tokens``): 403;
3. the message number is claimed for the channel in one conditional UPDATE: a number not
   above the last one seen is a replay, acknowledged without work;
4. the calendar is marked changed and its refresh handed to the background runner.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calcache.background.runners import get_runner
from calcache.conf import conf
from calcache.exceptions import CalcacheError
from calcache.models import PushChannel, SelectedCalendar
from calcache.push.tokens import is_legacy_token, is_signed_for, matches_hash, token_hash

logger = logging.getLogger("calcache.webhooks")

# Seconds during which a channel we do not keep gets at most one channels.stop call,
# however many notifications Google sends for it (per Django cache: configure a shared
# one, as for per-account pacing, to make it one per site rather than per process).
STOP_COALESCE_SECONDS = 3600
# What the columns and Google allow; longer values cannot be ours.
CHANNEL_ID_MAX_LENGTH = PushChannel._meta.get_field("channel_id").max_length or 64
RESOURCE_ID_MAX_LENGTH = PushChannel._meta.get_field("resource_id").max_length or 255
CALENDAR_ID_MAX_LENGTH = SelectedCalendar._meta.get_field("calendar_id").max_length or 255
TOKEN_MAX_LENGTH = 256
STATE_MAX_LENGTH = 32
RESOURCE_URI_MAX_LENGTH = 2048
MESSAGE_NUMBER_MAX = 2**63 - 1  # PushChannel.last_message_number is a bigint


class Outcome(enum.StrEnum):
    FORBIDDEN = "forbidden"
    SYNC_MESSAGE = "sync message"
    UNKNOWN_CHANNEL = "unknown channel"
    EXPIRED_CHANNEL = "expired channel"
    REPLAYED = "replayed"
    QUEUED = "queued"
    DEFERRED = "deferred"
    PENDING = "already queued"
    IGNORED = "ignored"


class InvalidNotification(CalcacheError, ValueError):
    """A notification header Google would never send (answered 400, nothing done)."""


@dataclass(frozen=True)
class Notification:
    """A notification's headers, checked; ``None`` for a header not sent."""

    channel_id: str | None
    token: str | None
    message_number: int | None
    state: str
    resource_id: str
    calendar_id: str | None  # named in X-Goog-Resource-URI


def _header(headers: Mapping[str, str], name: str, max_length: int) -> str | None:
    value = headers.get(name)
    if value is None:
        return None
    if len(value) > max_length or not (value.isascii() and value.isprintable()):
        raise InvalidNotification(
            f"{name} is not valid: at most {max_length} printable ASCII characters."
        )
    return value


def _message_number(raw: str | None) -> int | None:
    if raw is None:
        return None
    # Length before int(): a 5,000-digit string would raise (Python's conversion limit).
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(MESSAGE_NUMBER_MAX))
    if not digits or int(raw) > MESSAGE_NUMBER_MAX:
        raise InvalidNotification(
            f"X-Goog-Message-Number is not valid: a whole number from 0 to {MESSAGE_NUMBER_MAX}."
        )
    return int(raw)


def _calendar_id(resource_uri: str | None) -> str | None:
    """The calendar id in ``.../calendars/{id}/events`` (Google's resource URI)."""
    marker = "/calendars/"
    if resource_uri is None or marker not in resource_uri:
        return None
    calendar_id = unquote(resource_uri.split(marker, 1)[1].split("/", 1)[0].split("?", 1)[0])
    # Percent-encoding can smuggle in what the header itself may not carry (%00: NUL,
    # which PostgreSQL refuses in a query).
    if not calendar_id.isprintable() or len(calendar_id) > CALENDAR_ID_MAX_LENGTH:
        raise InvalidNotification("X-Goog-Resource-Uri names no valid calendar.")
    return calendar_id


def parse_notification(headers: Mapping[str, str]) -> Notification:
    """Read a notification's headers (names case-insensitive, as Django gives them).
    Missing headers are ``None`` (the token check refuses what lacks them); malformed
    ones raise ``InvalidNotification``."""
    return Notification(
        channel_id=_header(headers, "X-Goog-Channel-Id", CHANNEL_ID_MAX_LENGTH),
        token=_header(headers, "X-Goog-Channel-Token", TOKEN_MAX_LENGTH),
        message_number=_message_number(headers.get("X-Goog-Message-Number")),
        state=_header(headers, "X-Goog-Resource-State", STATE_MAX_LENGTH) or "",
        resource_id=_header(headers, "X-Goog-Resource-Id", RESOURCE_ID_MAX_LENGTH) or "",
        calendar_id=_calendar_id(_header(headers, "X-Goog-Resource-Uri", RESOURCE_URI_MAX_LENGTH)),
    )


def is_authentic(notification: Notification, channel: PushChannel | None) -> bool:
    """The notification carries its channel's token (every comparison in constant time):

    - a channel we keep, opened with a token of its own: that token (its stored hash);
    - a channel we keep, opened before per-channel tokens: ``CALCACHE_WEBHOOK_TOKEN``;
    - a channel we do not keep: a token we signed for that channel id (or, for channels
      from before per-channel tokens, ``CALCACHE_WEBHOOK_TOKEN``).
    """
    token, channel_id = notification.token, notification.channel_id
    if not token or not channel_id:
        return False
    if channel is not None:
        if channel.token_hash:
            return matches_hash(token, channel.token_hash)
        return is_legacy_token(token)
    return is_signed_for(token, channel_id) or is_legacy_token(token)


def handle_notification(headers: Mapping[str, str], *, now: datetime | None = None) -> Outcome:
    """Act on one notification's headers (names case-insensitive, as Django gives them).

    Raises ``InvalidNotification`` for malformed headers. Outside a transaction (the
    webhook view runs without one) a needed refresh is submitted before this returns:
    ``QUEUED`` when the runner took it, ``DEFERRED`` when it refused (a broker outage:
    the calendar stays marked, as lost, for the next notification or the sweep). Inside
    one, submission waits for the commit and the answer is ``QUEUED``.
    """
    notification = parse_notification(headers)
    channel = (
        PushChannel.objects.filter(channel_id=notification.channel_id).first()
        if notification.channel_id
        else None
    )
    if not is_authentic(notification, channel):
        return Outcome.FORBIDDEN
    number = notification.message_number
    if number is None:
        raise InvalidNotification("X-Goog-Message-Number is required.")
    now = now or timezone.now()
    channel_id = notification.channel_id or ""
    if channel is None:
        return _unknown_channel(notification, channel_id)
    if not _claim_message(channel, number, now):
        # Google's numbers only grow on a channel. An older one that arrives late (a
        # retried delivery) is covered too: the refresh of the newer one lists every
        # change since the calendar's last sync.
        return Outcome.REPLAYED
    if notification.state == "sync":
        # Sent once when a channel opens; nothing changed, nothing to stop.
        return Outcome.SYNC_MESSAGE
    if channel.stopped_at is not None or channel.expiration <= now:
        # Google keeps sending until the channel is stopped or expires; renewal replaced it.
        logger.info("Notification for stopped or expired channel %s", channel_id)
        _stop_once(channel.selected_calendar_id, channel_id, notification.resource_id)
        return Outcome.EXPIRED_CHANNEL
    if notification.state not in ("exists", "not_exists"):
        return Outcome.IGNORED
    selected_id = channel.selected_calendar_id
    if not _needs_submission(selected_id, now):
        return Outcome.PENDING
    if transaction.get_connection().in_atomic_block:
        # Inside a transaction (a caller's, or ATOMIC_REQUESTS were the view not exempt)
        # a worker must not look before the mark is committed: submit after the commit,
        # when the answer is long given; a refusal then leaves the mark for the sweep.
        transaction.on_commit(lambda: _submit_sync(selected_id, now))
        return Outcome.QUEUED
    return Outcome.QUEUED if _submit_sync(selected_id, now) else Outcome.DEFERRED


def _unknown_channel(notification: Notification, channel_id: str) -> Outcome:
    if notification.state == "sync":
        # Google sends "sync" as soon as a channel opens, possibly before the
        # PushChannel row that records it is committed: never stop on that.
        return Outcome.UNKNOWN_CHANNEL
    selected = (
        SelectedCalendar.objects.filter(calendar_id=notification.calendar_id, enabled=True).first()
        if notification.calendar_id
        else None
    )
    if selected is not None:
        _stop_once(selected.pk, channel_id, notification.resource_id)
    return Outcome.UNKNOWN_CHANNEL


def _claim_message(channel: PushChannel, number: int, now: datetime) -> bool:
    """Record ``number`` as the channel's last message if it is above the last one; in
    one UPDATE, so of two concurrent copies of a notification only one gets True."""
    return bool(
        PushChannel.objects.filter(pk=channel.pk)
        .filter(Q(last_message_number__isnull=True) | Q(last_message_number__lt=number))
        .update(last_message_number=number, last_message_at=now)
    )


def _stop_once(selected_id: int, channel_id: str, resource_id: str) -> None:
    """Submit stopping a channel we do not keep, at most once per ``STOP_COALESCE_SECONDS``
    per channel id (the channel id is hashed into the cache key: any characters)."""
    key = f"calcache:push:stop:{token_hash(channel_id)}"
    try:
        first = cache.add(key, True, timeout=STOP_COALESCE_SECONDS)
    except Exception:
        # A cache outage must not cost Google's 200; it costs a stop call per notice.
        logger.exception("Cache unavailable; stopping channel %s uncoalesced", channel_id)
        first = True
    if not first:
        return
    logger.info("Notification for a channel we do not keep (%s); stopping it", channel_id)
    transaction.on_commit(lambda: _submit_stop(selected_id, channel_id, resource_id))


def _submit_stop(selected_id: int, channel_id: str, resource_id: str) -> None:
    try:
        get_runner().submit_stop(selected_id, channel_id, resource_id)
    except Exception:
        # Google keeps sending for it until it expires; a notice after the coalescing
        # period tries again.
        logger.exception("Could not submit stopping channel %s", channel_id)


def _submit_sync(selected_id: int, marked_at: datetime) -> bool:
    """Hand the refresh to the runner; False when it refused (a broker outage)."""
    try:
        get_runner().submit_sync(selected_id)
    except Exception:
        # Google gets its 200 all the same. The mark stays, dated back by the grace so it
        # reads as lost at once: the next notification, the `refresh_stale` sweep or
        # `sync_calendars --dirty` resubmits it once the broker is back. Only our own
        # mark is dated back: one a refresh has cleared or re-stamped is left alone.
        logger.exception("Could not submit the refresh of calendar %s; left marked", selected_id)
        SelectedCalendar.objects.filter(pk=selected_id, dirty_since=marked_at).update(
            dirty_since=marked_at - timedelta(seconds=conf.dirty_grace_seconds)
        )
        return False
    return True


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
