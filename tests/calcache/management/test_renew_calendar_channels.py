"""The renew_calendar_channels command through call_command, against the emulator."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import PushChannel
from calcache.push.channels import open_channel
from tests.calcache.sync.conftest import Mirror, make_mirror

pytestmark = pytest.mark.django_db


@pytest.fixture
def stopped(emulator: EmulatorClient, webhooks_on: None) -> Mirror:
    """A selected calendar whose only channel was stopped."""
    mirror = make_mirror(emulator)
    mirror.advance(timezone.now() - mirror.now)  # channels expire by the real clock
    open_channel(mirror.selected())
    PushChannel.objects.update(stopped_at=timezone.now())
    return mirror


def test_renew_command_opens_missing_channels_and_reports(stopped: Mirror) -> None:
    out = StringIO()
    call_command("renew_calendar_channels", stdout=out)
    assert "opened 1 missing channel(s), 0 failure(s)" in out.getvalue()
    assert PushChannel.objects.filter(stopped_at__isnull=True).count() == 1


def test_a_channel_google_refuses_is_named_and_exits_1(
    stopped: Mirror, emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=400, reason="invalid", path="/events/watch")
    out = StringIO()
    with pytest.raises(CommandError, match="1 channel") as caught:
        call_command("renew_calendar_channels", stdout=out)
    assert caught.value.returncode == 1
    assert f"FAILED {stopped.email}: " in out.getvalue()
    assert not PushChannel.objects.filter(stopped_at__isnull=True).exists()


def test_renew_command_needs_webhooks(settings: Any) -> None:
    settings.CALCACHE_WEBHOOK_URL = ""
    with pytest.raises(CommandError, match="CALCACHE_WEBHOOK_URL is not set"):
        call_command("renew_calendar_channels")


@pytest.mark.usefixtures("webhooks_on")
def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(CommandError, match="--margin-hours cannot be negative"):
        call_command("renew_calendar_channels", "--margin-hours", "-1")
