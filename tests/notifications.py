"""Push channels and Google's notifications to the webhook view, for tests that drive
the background work through it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from calcache.models import PushChannel, SelectedCalendar

WEBHOOK_URL = "/calendar-cache/webhooks/google/"
WEBHOOK_TOKEN = "test-channel-token"


def open_test_channel(selected: SelectedCalendar, name: str) -> PushChannel:
    """A live channel row, as ``events.watch`` would have left it (Google not asked)."""
    return PushChannel.objects.create(
        selected_calendar=selected,
        channel_id=f"channel-{name}",
        resource_id=f"resource-{name}",
        expiration=timezone.now() + timedelta(days=7),
    )


def notify(client: Client, channel: PushChannel, state: str = "exists") -> Any:
    """POST one notification for ``channel``; returns the response's JSON body.
    The test must set ``CALCACHE_WEBHOOK_TOKEN`` to ``WEBHOOK_TOKEN``."""
    response = client.post(
        WEBHOOK_URL,
        headers={
            "X-Goog-Channel-ID": channel.channel_id,
            "X-Goog-Channel-Token": WEBHOOK_TOKEN,
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": "7",
        },
    )
    assert response.status_code == 200, response.content
    return response.json()
