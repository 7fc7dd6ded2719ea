"""Database and Google outages answered 503 with Retry-After (calcache/views/outages.py).

The database is made to fail here by patching; tests/calcache/test_outages.py stops a
real PostgreSQL server instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import InterfaceError, OperationalError, ProgrammingError
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from calcache.emulator import EmulatorClient
from calcache.exceptions import GoogleUnavailable, LiveBudgetExceeded
from calcache.views.outages import outage_json, outage_page
from tests.calcache.sync.conftest import Mirror, make_mirror

pytestmark = pytest.mark.django_db
API = "/calendar-cache/availability/"
WINDOW = {"start": "2026-03-02T12:00:00Z", "end": "2026-03-03T12:00:00Z"}
PAGES = [
    "/calendar-cache/me/",
    "/calendar-cache/calendars/",
    "/calendar-cache/dashboard/",
    "/calendar-cache/connect/google/",
    "/calendar-cache/connect/google/callback/",
]
DOWN = OperationalError(
    'connection to server at "127.0.0.1" failed: Connection refused\n\tIs it up?'
)


@pytest.fixture
def ada(emulator: EmulatorClient, client: Client) -> Mirror:
    mirror = make_mirror(emulator)
    start = mirror.now + timedelta(hours=2)
    emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    mirror.user.is_staff = mirror.user.is_superuser = True
    mirror.user.save()
    client.force_login(mirror.user)
    return mirror


def session_lookup_fails(error: Exception = DOWN) -> Any:
    """The first query of a logged-in request, the user's session, fails."""
    return mock.patch("django.contrib.auth.get_user", side_effect=error)


@pytest.mark.parametrize("accept", ["application/json", "text/html", "*/*"])
def test_api_with_the_database_down_is_json_503_with_retry_after(
    ada: Mirror, client: Client, accept: str
) -> None:
    with session_lookup_fails():
        response = client.get(API, WINDOW, HTTP_ACCEPT=accept)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "30"
    assert response.json() == {
        "error": "The calendar cache's database is unavailable; try again shortly."
    }


@pytest.mark.parametrize("error", [DOWN, InterfaceError("connection already closed")])
def test_api_losing_the_database_mid_answer_is_503(
    ada: Mirror, client: Client, error: Exception
) -> None:
    with mock.patch("calcache.views.api.get_availability_for_users", side_effect=error):
        response = client.get(API, WINDOW)
    assert (response.status_code, response["Retry-After"]) == (503, "30")
    assert "database is unavailable" in response.json()["error"]


def test_api_with_google_down_on_the_live_path_is_503_with_retry_after(
    ada: Mirror, client: Client, emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=503, path="/freeBusy")
    response = client.get(API, WINDOW)
    assert (response.status_code, response["Retry-After"]) == (503, "30")
    assert response.json() == {
        "error": "Calendar data is unavailable right now (Google did not answer); "
        "try again shortly."
    }


def test_api_passes_on_googles_retry_after(
    ada: Mirror, client: Client, emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=503, path="/freeBusy", retry_after=7)
    response = client.get(API, WINDOW)
    assert (response.status_code, response["Retry-After"]) == (503, "7")


def test_api_with_google_timing_out_is_503(
    ada: Mirror, client: Client, emulator: EmulatorClient, settings: Any
) -> None:
    settings.CALCACHE_LIVE_TIMEOUT = 0.2
    emulator.fail_next(1, kind="slow", delay=2, path="/freeBusy")
    response = client.get(API, WINDOW)
    assert (response.status_code, response["Retry-After"]) == (503, "30")
    assert "Google did not answer" in response.json()["error"]


@pytest.mark.parametrize("url", PAGES)
def test_pages_with_the_database_down_are_a_friendly_503(
    ada: Mirror, client: Client, url: str
) -> None:
    with session_lookup_fails():
        response = client.get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Calendars are unavailable for a moment" in page
    assert "Our database is not answering" in page
    assert f'href="{url}"' in page  # "Try again"
    assert "Traceback" not in page


def test_saving_the_selection_with_the_database_down_is_a_friendly_503(
    ada: Mirror, client: Client
) -> None:
    with session_lookup_fails():
        response = client.post("/calendar-cache/calendars/", {"credential": "1"})
    assert response.status_code == 503
    assert "Calendars are unavailable for a moment" in response.content.decode()


def test_dashboard_losing_the_database_mid_page_is_a_friendly_503(
    ada: Mirror, client: Client
) -> None:
    with mock.patch("calcache.views.dashboard.rollout_status", side_effect=DOWN):
        response = client.get("/calendar-cache/dashboard/")
    assert (response.status_code, response["Retry-After"]) == (503, "30")
    assert "Our database is not answering" in response.content.decode()


def test_webhook_with_the_database_down_is_json_503(client: Client) -> None:
    with mock.patch("calcache.views.webhooks.handle_notification", side_effect=DOWN):
        response = client.post("/calendar-cache/webhooks/google/")
    assert (response.status_code, response["Retry-After"]) == (503, "30")
    assert "database is unavailable" in response.json()["error"]


# --- the decorators themselves ---------------------------------------------------------
def failing_view(error: Exception) -> Any:
    def view(request: HttpRequest) -> HttpResponse:
        raise error

    return view


def test_other_database_errors_are_not_hidden_as_outages(rf: RequestFactory) -> None:
    # A missing table or a bad statement is a bug: it stays a 500 with its traceback.
    for decorate in (outage_json, outage_page):
        with pytest.raises(ProgrammingError):
            decorate(failing_view(ProgrammingError("no such table")))(rf.get("/"))


def test_a_spent_live_budget_stays_429(rf: RequestFactory) -> None:
    view = outage_json(failing_view(LiveBudgetExceeded("spent", retry_after=12.5)))
    response = view(rf.get("/"))
    assert (response.status_code, response["Retry-After"]) == (429, "13")


def test_google_down_on_a_page_says_so(rf: RequestFactory) -> None:
    response = outage_page(failing_view(GoogleUnavailable("timed out")))(rf.get("/x/?week=1"))
    assert (response.status_code, response["Retry-After"]) == (503, "30")
    page = response.content.decode()
    assert "Google Calendar is not answering" in page and 'href="/x/?week=1"' in page


def test_outages_are_logged_in_one_line(
    rf: RequestFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="calcache.views"):
        outage_json(failing_view(DOWN))(rf.get("/calendar-cache/availability/"))
    assert [r.getMessage() for r in caplog.records] == [
        "GET /calendar-cache/availability/ answered 503: OperationalError: "
        'connection to server at "127.0.0.1" failed: Connection refused'
    ]
    assert caplog.records[0].exc_info is None
