"""calcache.views.webhooks: the HTTP face of POST webhooks/google/."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from calcache.models import PushChannel
from tests.notifications import WEBHOOK_TOKEN, WEBHOOK_URL, notify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _token(settings: Any) -> None:
    settings.CALCACHE_WEBHOOK_TOKEN = WEBHOOK_TOKEN


def test_only_post_is_allowed(client: Client) -> None:
    assert client.get(WEBHOOK_URL).status_code == 405


def test_a_wrong_token_is_403_with_a_json_reason(client: Client) -> None:
    response = client.post(WEBHOOK_URL, headers={"X-Goog-Channel-Token": "nope"})
    assert response.status_code == 403
    assert response.json() == {"error": "Missing or wrong X-Goog-Channel-Token."}


def test_google_needs_no_csrf_token_and_gets_the_outcome_as_json() -> None:
    google = Client(enforce_csrf_checks=True)  # Google sends no CSRF cookie
    stranger = PushChannel(channel_id="not-ours", resource_id="r-1")  # no such row
    assert notify(google, stranger, state="sync") == {"status": "unknown channel"}
