"""The availability API through the Django test client."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from calcache.emulator import EmulatorClient
from calcache.models import SelectedCalendar
from flags.models import Team
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


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-03-02T00:00:00Z\x00", "end": "2026-03-03T00:00:00Z"},
        {"start": "\x00", "end": "2026-03-03T00:00:00Z"},
        {"start": "2026-03-02T00:00:00Z", "end": "9" * 5000},
        {"start": "99999999999999999999999", "end": "2026-03-03T00:00:00Z"},
        {"start": "2026-03-02T00:00:00+99:00", "end": "2026-03-03T00:00:00Z"},
    ],
)
def test_nul_and_huge_numbers_in_the_window_are_400(
    ada: Mirror, client: Client, params: dict[str, str]
) -> None:
    response = client.get(URL, params)
    assert response.status_code == 400 and "is not an ISO 8601" in response.json()["error"]


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


NOT_A_FUNCTION = {"allow": True}


@pytest.mark.parametrize(
    "hook", ["no_such_module.allow", "tests.calcache.views.test_api.NOT_A_FUNCTION"]
)
def test_a_broken_permission_hook_is_a_503_with_a_reason_never_a_500(
    ada: Mirror, client: Client, settings: Any, hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings.CALCACHE_AVAILABILITY_PERMISSION = hook
    other = UserFactory()
    params = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z", "user": other.pk}
    response = client.get(URL, params)
    assert response.status_code == 503 and response["Retry-After"]
    assert "permission hook is misconfigured" in response.json()["error"]
    assert "calcache.E014" in caplog.text
    # the requester's own availability needs no hook
    del params["user"]
    assert client.get(URL, params).status_code == 200


def test_google_down_and_nothing_cached_is_503(
    ada: Mirror, client: Client, emulator: EmulatorClient, settings: Any
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    emulator.fail_next(1, status=503, path="/freeBusy")
    response = client.get(URL, {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"})
    assert response.status_code == 503 and "unavailable" in response.json()["error"]


@pytest.mark.parametrize("error_reason", ["internalError", "backendError", "notFound"])
def test_a_calendar_freebusy_could_not_read_is_503_never_free(
    ada: Mirror, client: Client, emulator: EmulatorClient, error_reason: str
) -> None:
    # Google answers 200 with the calendar's entry carrying errors and no busy time.
    emulator.fail_freebusy(ada.email, reason=error_reason)
    window = {"start": "2026-03-02T12:00:00Z", "end": "2026-03-03T12:00:00Z"}
    response = client.get(URL, window)
    assert response.status_code == 503 and "unavailable" in response.json()["error"]
    assert response["Retry-After"]
    again = client.get(URL, window)
    assert again.status_code == 200
    assert again.json() == {
        "busy": [{"start": "2026-03-02T14:00:00+00:00", "end": "2026-03-02T15:00:00+00:00"}],
        "source": "live",
    }


def test_a_selected_calendar_google_does_not_know_is_503(ada: Mirror, client: Client) -> None:
    SelectedCalendar.objects.create(
        credential=ada.selected().credential, calendar_id="gone@example.com"
    )
    window = {"start": "2026-03-02T12:00:00Z", "end": "2026-03-03T12:00:00Z"}
    for _ in range(2):  # an answer kept with the error is not reused as free time
        response = client.get(URL, window)
        assert response.status_code == 503 and "unavailable" in response.json()["error"]


# --- many users and teams -------------------------------------------------------------------

WINDOW = {"start": "2026-03-02T12:00:00Z", "end": "2026-03-03T12:00:00Z"}


@pytest.fixture
def grace(emulator: EmulatorClient) -> Mirror:
    mirror = make_mirror(emulator, "grace@example.com")
    start = mirror.now + timedelta(hours=2, minutes=30)
    emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    return mirror


@pytest.fixture
def staff(ada: Mirror, settings: Any) -> Mirror:
    settings.CALCACHE_AVAILABILITY_PERMISSION = "tests.calcache.views.test_api.allow_staff"
    ada.user.is_staff = True
    ada.user.save()
    return ada


def test_users_answers_each_and_the_union(staff: Mirror, grace: Mirror, client: Client) -> None:
    response = client.get(URL, {**WINDOW, "users": f"{staff.user.pk},{grace.user.pk}"})
    assert response.status_code == 200
    body = response.json()
    assert body["users"] == {
        str(staff.user.pk): {
            "busy": [{"start": "2026-03-02T14:00:00+00:00", "end": "2026-03-02T15:00:00+00:00"}],
            "source": "live",
        },
        str(grace.user.pk): {
            "busy": [{"start": "2026-03-02T14:30:00+00:00", "end": "2026-03-02T15:30:00+00:00"}],
            "source": "live",
        },
    }
    assert body["busy"] == [
        {"start": "2026-03-02T14:00:00+00:00", "end": "2026-03-02T15:30:00+00:00"}
    ]


def test_a_team_is_its_members(staff: Mirror, grace: Mirror, client: Client) -> None:
    team = Team.objects.create(name="Support", slug="support")
    team.members.add(staff.user, grace.user)
    body = client.get(URL, {**WINDOW, "team": "support"}).json()
    assert set(body["users"]) == {str(staff.user.pk), str(grace.user.pk)}
    assert client.get(URL, {**WINDOW, "team": "nobody"}).status_code == 400


def test_one_forbidden_user_forbids_the_request(ada: Mirror, grace: Mirror, client: Client) -> None:
    own = client.get(URL, {**WINDOW, "users": str(ada.user.pk)})
    assert own.status_code == 200  # one's own id needs no permission
    response = client.get(URL, {**WINDOW, "users": f"{ada.user.pk},{grace.user.pk}"})
    assert response.status_code == 403 and "error" in response.json()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"users": "1,2,3,4"}, "at most 3"),
        ({"users": "1,x"}, "is not a user id"),
        ({"users": " , "}, "'users' is empty"),
        ({"users": "1", "team": "support"}, "only one of"),
        ({"user": "1", "users": "1"}, "only one of"),
        ({"user": "99999999999999999999999"}, "is not a user id"),
        ({"user": "9223372036854775808"}, "is not a user id"),
        ({"user": "9" * 5000}, "is not a user id"),
        ({"user": "1\x00"}, "is not a user id"),
        ({"user": "\x00"}, "is not a user id"),
        ({"user": "²"}, "is not a user id"),  # str.isdigit() holds, int() refuses
        ({"user": "１２"}, "is not a user id"),
        ({"user": "-1"}, "is not a user id"),
        ({"user": "1.5"}, "is not a user id"),
        ({"users": "1,99999999999999999999999"}, "is not a user id"),
        ({"users": "1,2\x00"}, "is not a user id"),
        ({"users": "²"}, "is not a user id"),
        ({"team": "support\x00"}, "no team"),
        ({"team": "\x00"}, "no team"),
        ({"team": "9" * 5000}, "no team"),
        ({"team": "ü"}, "no team"),
    ],
)
def test_malformed_or_too_many_users_is_400_before_any_permission(
    ada: Mirror, client: Client, settings: Any, extra: dict[str, str], message: str
) -> None:
    settings.CALCACHE_AVAILABILITY_MAX_USERS = 3
    response = client.get(URL, {**WINDOW, **extra})
    assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.parametrize(
    "window",
    [
        {"start": "9999-12-01T00:00:00Z", "end": "9999-12-08T00:00:00Z"},
        {"start": "0001-01-01T00:00:00+05:00", "end": "0001-01-02T00:00:00Z"},
        {"start": "9999-12-31T20:00:00-05:00", "end": "9999-12-31T22:00:00-05:00"},
        {"start": "1969-12-31T00:00:00Z", "end": "1970-01-02T00:00:00Z"},
        # the UTC conversion itself runs past year 9999 or before year 1
        {"start": "9999-12-31T20:00:00Z", "end": "9999-12-31T23:00:00-05:00"},
        {"start": "0001-01-01T00:30:00+01:00", "end": "0001-01-02T00:00:00Z"},
        {"start": "9999-12-31T23:59:59.999999-23:59", "end": "9999-12-31T23:59:59Z"},
    ],
    ids=[
        "year-9999-month-widening",
        "offset-before-year-1",
        "offset-past-year-9999",
        "before-1970",
        "end-offset-past-year-9999",
        "start-offset-before-year-1",
        "largest-negative-offset",
    ],
)
def test_windows_no_calendar_needs_are_400(
    ada: Mirror, client: Client, window: dict[str, str]
) -> None:
    response = client.get(URL, window)
    assert response.status_code == 400 and "1970 to 2100" in response.json()["error"]


def test_a_spent_live_budget_is_429_with_retry_after(
    ada: Mirror, client: Client, settings: Any
) -> None:
    settings.CALCACHE_JSON_CACHE_ENABLED = False
    settings.CALCACHE_LIVE_CALLS_PER_MINUTE = 2
    for _ in range(2):
        assert client.get(URL, WINDOW).status_code == 200
    response = client.get(URL, WINDOW)
    assert response.status_code == 429 and "error" in response.json()
    assert 1 <= int(response["Retry-After"]) <= 60


def test_one_member_google_could_not_read_makes_the_team_503(
    staff: Mirror, grace: Mirror, client: Client, emulator: EmulatorClient
) -> None:
    emulator.fail_freebusy(grace.email, reason="backendError")
    response = client.get(URL, {**WINDOW, "users": f"{staff.user.pk},{grace.user.pk}"})
    assert response.status_code == 503 and "unavailable" in response.json()["error"]
