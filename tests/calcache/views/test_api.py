"""The availability API through the Django test client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from calcache.emulator import EmulatorClient
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = "/calendar-cache/availability/"


def allow_staff(request: Any, target_user: Any) -> bool:
    """A host site's permission hook (CALCACHE_AVAILABILITY_PERMISSION)."""
    return bool(request.user.is_staff)


@pytest.fixture
def ada(emulator: EmulatorClient, client: Client) -> Mirror:
    mirror = make_mirror(emulator)
    start = mirror.now + timedelta(hours=2)
    emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    client.force_login(mirror.user)
    return mirror


def test_url_is_named() -> None:
    assert reverse("calcache:availability") == URL


def test_answers_busy_intervals_and_source(ada: Mirror, client: Client) -> None:
    response = client.get(
        URL, {"start": "2026-03-02T12:00:00Z", "end": "2026-03-03T12:00:00+00:00"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "busy": [{"start": "2026-03-02T14:00:00+00:00", "end": "2026-03-02T15:00:00+00:00"}],
        "source": "live",
    }
    again = client.get(URL, {"start": "2026-03-02T12:00:00Z", "end": "2026-03-03T12:00:00Z"})
    assert again.json()["source"] == "json"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"end": "2026-03-03T00:00:00Z"}, "'start' is required"),
        ({"start": "2026-03-02T00:00:00Z"}, "'end' is required"),
        ({"start": "yesterday", "end": "2026-03-03T00:00:00Z"}, "'start' is not an ISO 8601"),
        (
            {"start": "2026-03-02T00:00:00", "end": "2026-03-03T00:00:00Z"},
            "'start' has no time zone",
        ),
        ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-02T00:00:00Z"}, "'end' must be after"),
        ({"start": "2026-03-02T00:00:00Z", "end": "2026-06-03T00:00:01Z"}, "more than 92 days"),
    ],
)
def test_bad_parameters_are_400_with_a_json_error(
    ada: Mirror, client: Client, params: dict[str, str], message: str
) -> None:
    response = client.get(URL, params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_plus_offset_survives_an_unencoded_query(ada: Mirror, client: Client) -> None:
    response = client.get(URL + "?start=2026-03-02T13:00:00+01:00&end=2026-03-03T12:00:00Z")
    assert response.status_code == 200


def test_not_logged_in_is_401_for_json_and_a_redirect_otherwise(client: Client) -> None:
    params = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}
    response = client.get(URL, params, HTTP_ACCEPT="application/json")
    assert response.status_code == 401 and response.json()["error"]
    response = client.get(URL, params, HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 401
    response = client.get(URL, params)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_only_get(ada: Mirror, client: Client) -> None:
    assert client.post(URL).status_code == 405


def test_other_users_need_the_host_sites_permission(
    ada: Mirror, client: Client, settings: Any
) -> None:
    other = UserFactory()
    params = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z", "user": other.pk}
    response = client.get(URL, params)
    assert response.status_code == 403 and "'user'" in response.json()["error"]
    settings.CALCACHE_AVAILABILITY_PERMISSION = "tests.calcache.views.test_api.allow_staff"
    assert client.get(URL, params).status_code == 403  # ada is not staff
    ada.user.is_staff = True
    ada.user.save()
    response = client.get(URL, params)
    assert response.status_code == 200 and response.json()["busy"] == []
    assert client.get(URL, {**params, "user": "424242"}).status_code == 403


def test_google_down_and_nothing_cached_is_503(
    ada: Mirror, client: Client, emulator: EmulatorClient, settings: Any
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    emulator.fail_next(1, status=503, path="/freeBusy")
    response = client.get(URL, {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"})
    assert response.status_code == 503 and "unavailable" in response.json()["error"]
