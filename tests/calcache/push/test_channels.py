"""calcache.push.channels: opening, stopping and renewing events.watch channels at the emulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calcache.conf import conf
from calcache.emulator import EmulatorClient
from calcache.models import Credential, PushChannel, SelectedCalendar
from calcache.push.channels import (
    open_channel,
    renew_channels,
    stop_calendar_channels,
    stop_remote_channel,
)
from calcache.push.tokens import is_signed_for, token_hash
from tests.calcache.sync.conftest import Mirror, make_mirror

pytestmark = pytest.mark.django_db

MARGIN = timedelta(hours=24)


@pytest.fixture
def mirror(emulator: EmulatorClient, webhooks_on: None) -> Mirror:
    mirror = make_mirror(emulator)
    mirror.advance(timezone.now() - mirror.now)  # channels expire by the real clock
    return mirror


def google_calls(emulator: EmulatorClient, ending: str) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["path"].endswith(ending)]


def live() -> list[PushChannel]:
    return list(PushChannel.objects.filter(stopped_at__isnull=True))


def test_a_channel_needs_the_webhook_url(mirror: Mirror, settings: Any) -> None:
    settings.CALCACHE_WEBHOOK_URL = ""
    with pytest.raises(ValueError, match="CALCACHE_WEBHOOK_URL is not set"):
        open_channel(mirror.selected())
    assert not PushChannel.objects.exists()


def test_renewal_opens_the_new_channel_before_the_old_one_expires(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    old = open_channel(mirror.selected())
    assert old.expiration > timezone.now() + timedelta(days=6)
    nothing = renew_channels(margin=MARGIN)
    assert (nothing.renewed, nothing.opened) == (0, 0)
    later = old.expiration - timedelta(hours=12)  # inside the margin, before expiry
    report = renew_channels(margin=MARGIN, now=later)
    assert (report.renewed, report.stopped, report.failed) == (1, 1, [])
    new = PushChannel.objects.get(stopped_at__isnull=True)
    assert new.channel_id != old.channel_id
    old.refresh_from_db()
    assert old.stopped_at is not None
    paths = [r["path"] for r in emulator.requests()]
    watch_at = max(i for i, p in enumerate(paths) if p.endswith("/events/watch"))
    stop_at = max(i for i, p in enumerate(paths) if p.endswith("/channels/stop"))
    assert watch_at < stop_at  # the new channel existed before the old one stopped


def test_renewal_opens_missing_channels_only_for_enabled_calendars_of_valid_accounts(
    mirror: Mirror,
) -> None:
    selected = SelectedCalendar.objects.filter(pk=mirror.selected().pk)
    selected.update(enabled=False)
    assert renew_channels(margin=MARGIN).opened == 0
    selected.update(enabled=True)
    mirror.selected().credential.mark_invalid("revoked")
    assert renew_channels(margin=MARGIN).opened == 0
    Credential.objects.update(invalid=False)
    assert renew_channels(margin=MARGIN).opened == 1
    assert [channel.selected_calendar_id for channel in live()] == [mirror.selected().pk]
    assert renew_channels(margin=MARGIN).opened == 0  # one is enough


def test_an_expiring_channel_of_a_deselected_calendar_is_left_to_expire(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    old = open_channel(mirror.selected())
    SelectedCalendar.objects.filter(pk=mirror.selected().pk).update(enabled=False)
    emulator.clear_requests()
    report = renew_channels(margin=MARGIN, now=old.expiration - timedelta(hours=1))
    assert (report.renewed, report.stopped, report.opened, report.failed) == (0, 0, 0, [])
    assert live() == [old] and emulator.requests() == []


def test_a_renewal_google_refuses_is_reported_and_the_old_channel_kept(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    old = open_channel(mirror.selected())
    emulator.fail_next(1, status=400, reason="invalid", path="/events/watch")
    report = renew_channels(margin=MARGIN, now=old.expiration - timedelta(hours=1))
    assert (report.renewed, report.stopped) == (0, 0)
    assert len(report.failed) == 1 and report.failed[0].startswith(f"{mirror.email}: ")
    assert live() == [old] and google_calls(emulator, "/channels/stop") == []


def test_deselecting_stops_every_live_channel_and_keeps_what_google_refused(
    mirror: Mirror, emulator: EmulatorClient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    for _ in range(3):
        open_channel(mirror.selected())
    emulator.fail_next(1, status=503, reason="backendError", path="/channels/stop")
    assert stop_calendar_channels(mirror.selected()) == 2
    assert len(live()) == 1 and "Could not stop channel" in caplog.text
    assert stop_calendar_channels(mirror.selected()) == 1
    assert live() == []


def test_a_stray_channel_is_stopped_with_its_calendars_credential(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    channel = open_channel(mirror.selected())
    emulator.clear_requests()
    stop_remote_channel(mirror.selected().pk, channel.channel_id, channel.resource_id)
    assert len(google_calls(emulator, "/channels/stop")) == 1 and live() == []
    # a calendar gone or an account refused: nobody to ask Google with
    stop_remote_channel(999_999, "channel", "resource")
    mirror.selected().credential.mark_invalid("revoked")
    stop_remote_channel(mirror.selected().pk, "channel", "resource")
    assert len(google_calls(emulator, "/channels/stop")) == 1


def test_a_channel_gets_a_token_of_its_own_and_keeps_only_its_hash(
    mirror: Mirror, emulator: EmulatorClient
) -> None:
    first, second = open_channel(mirror.selected()), open_channel(mirror.selected())
    watches = [r["body"] for r in google_calls(emulator, "/events/watch")]
    given = {body["id"]: body["token"] for body in watches}
    assert given[first.channel_id] != given[second.channel_id]
    for channel in (first, second):
        token = given[channel.channel_id]
        assert token != conf.webhook_token and len(token) <= 256
        assert is_signed_for(token, channel.channel_id)
        assert channel.token_hash == token_hash(token) and token not in channel.token_hash
