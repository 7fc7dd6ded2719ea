"""Push channels: opening, stopping and renewing Google's ``events.watch`` channels."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone

from calcache.conf import conf
from calcache.exceptions import GoogleError
from calcache.google.credentials import client_for
from calcache.models import PushChannel, SelectedCalendar
from calcache.push.tokens import new_channel_token, token_hash

logger = logging.getLogger("calcache.channels")


def open_channel(selected: SelectedCalendar) -> PushChannel:
    """Ask Google to push the calendar's changes to ``CALCACHE_WEBHOOK_URL``, with a token
    of the channel's own (``calcache.push.tokens``); ValueError when push is not configured."""
    if not conf.webhooks_enabled:
        raise ValueError("CALCACHE_WEBHOOK_URL is not set: push channels are off")
    channel_id = f"calcache-{uuid.uuid4().hex}"
    # The channel's own token, signed with CALCACHE_WEBHOOK_TOKEN; only its hash is kept.
    token = new_channel_token(channel_id)
    info = client_for(selected.credential).watch(
        selected.calendar_id,
        channel_id=channel_id,
        address=conf.webhook_url,
        token=token,
        expiration=timezone.now() + timedelta(days=conf.channel_ttl_days),
    )
    return PushChannel.objects.create(
        selected_calendar=selected,
        channel_id=info.id,
        resource_id=info.resource_id,
        expiration=info.expiration or timezone.now() + timedelta(days=7),
        token_hash=token_hash(token),
    )


def stop_channel(channel: PushChannel) -> None:
    """Stop a channel at Google (an unknown one counts as stopped) and mark it stopped."""
    client_for(channel.selected_calendar.credential).stop_channel(
        channel_id=channel.channel_id, resource_id=channel.resource_id
    )
    PushChannel.objects.filter(pk=channel.pk).update(stopped_at=timezone.now())


def stop_calendar_channels(selected: SelectedCalendar) -> int:
    """Stop every live channel of a calendar (when it is deselected)."""
    stopped = 0
    for channel in selected.channels.filter(stopped_at__isnull=True).select_related(
        "selected_calendar__credential"
    ):
        try:
            stop_channel(channel)
            stopped += 1
        except GoogleError as exc:
            logger.warning("Could not stop channel %s: %s", channel.channel_id, exc)
    return stopped


@dataclass
class RenewalReport:
    renewed: int = 0
    opened: int = 0
    stopped: int = 0
    failed: list[str] = field(default_factory=list)


def renew_channels(
    *, margin: timedelta | None = None, now: datetime | None = None
) -> RenewalReport:
    """Open a new channel for each one expiring within ``margin`` (before it expires), then
    stop the old one; open channels for selected calendars that have none (new selections,
    or channels the webhook found unknown). Safe to run every hour."""
    now = now or timezone.now()
    margin = margin if margin is not None else timedelta(hours=conf.channel_renew_margin_hours)
    report = RenewalReport()
    expiring = PushChannel.objects.filter(
        stopped_at__isnull=True, expiration__lte=now + margin
    ).select_related("selected_calendar__credential")
    for old in expiring:
        selected = old.selected_calendar
        if not selected.enabled or selected.credential.invalid:
            continue
        try:
            open_channel(selected)
            report.renewed += 1
        except (GoogleError, ValueError) as exc:
            report.failed.append(f"{selected.calendar_id}: {exc}")
            continue
        try:
            stop_channel(old)
            report.stopped += 1
        except GoogleError as exc:
            logger.warning("Old channel %s not stopped: %s", old.channel_id, exc)
    live = PushChannel.objects.filter(
        selected_calendar=OuterRef("pk"), stopped_at__isnull=True, expiration__gt=now
    )
    uncovered = (
        SelectedCalendar.objects.filter(enabled=True, credential__invalid=False)
        .exclude(Exists(live))
        .select_related("credential")
    )
    for selected in uncovered:
        try:
            open_channel(selected)
            report.opened += 1
        except (GoogleError, ValueError) as exc:
            report.failed.append(f"{selected.calendar_id}: {exc}")
    return report


def stop_remote_channel(selected_calendar_id: int, channel_id: str, resource_id: str) -> None:
    """Stop a channel Google still sends for but we no longer keep (unknown or expired)."""
    selected = (
        SelectedCalendar.objects.select_related("credential")
        .filter(pk=selected_calendar_id)
        .first()
    )
    if selected is None or selected.credential.invalid:
        return
    client_for(selected.credential).stop_channel(channel_id=channel_id, resource_id=resource_id)
    PushChannel.objects.filter(channel_id=channel_id, stopped_at__isnull=True).update(
        stopped_at=timezone.now()
    )
