"""calcache.availability.live: month widening, one query per credential, freeBusy live;
a calendar freeBusy could not read is an error, never free time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calcache.availability.live import (
    FreeBusyQuery,
    busy_from_value,
    fetch_freebusy,
    live_busy,
    month_bounds,
    user_queries,
)
from calcache.emulator import EmulatorClient
from calcache.exceptions import CalendarNotFound, GoogleError, GoogleUnavailable
from tests.calcache.availability.conftest import SECOND_ACCOUNT, freebusy_requests
from tests.calcache.sync.conftest import Mirror
from tests.factories import CredentialFactory, SelectedCalendarFactory

pytestmark = pytest.mark.django_db
HELSINKI = ZoneInfo("Europe/Helsinki")


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "bounds"),
    [
        (utc(2026, 3, 10), utc(2026, 3, 12), (utc(2026, 3, 1), utc(2026, 4, 1))),
        (utc(2026, 2, 20), utc(2026, 3, 10), (utc(2026, 2, 1), utc(2026, 4, 1))),
        (utc(2026, 3, 1), utc(2026, 3, 1, 1), (utc(2026, 3, 1), utc(2026, 4, 1))),
        (utc(2026, 3, 10), utc(2026, 4, 1), (utc(2026, 3, 1), utc(2026, 4, 1))),
        (utc(2026, 12, 20), utc(2026, 12, 31, 23), (utc(2026, 12, 1), utc(2027, 1, 1))),
        (utc(2026, 12, 10), utc(2027, 1, 1), (utc(2026, 12, 1), utc(2027, 1, 1))),
        (utc(2026, 11, 20), utc(2027, 1, 5), (utc(2026, 11, 1), utc(2027, 2, 1))),
        # 1:00 and 2:00 on 1 April in Helsinki are still 31 March in UTC
        (
            datetime(2026, 4, 1, 1, tzinfo=HELSINKI),
            datetime(2026, 4, 1, 2, tzinfo=HELSINKI),
            (utc(2026, 3, 1), utc(2026, 4, 1)),
        ),
    ],
    ids=[
        "inside-a-month",
        "across-two-months",
        "start-on-a-month-boundary",
        "end-on-a-month-boundary",
        "december",
        "end-on-new-year",
        "across-the-year",
        "utc-months",
    ],
)
def test_month_bounds(start: datetime, end: datetime, bounds: tuple[datetime, datetime]) -> None:
    assert month_bounds(start, end) == bounds
    assert all(moment.tzinfo == UTC for moment in bounds)


def test_user_queries_one_per_valid_credential_over_enabled_calendars(user: Any) -> None:
    first = CredentialFactory(user=user, account_email="first@example.com")
    second = CredentialFactory(user=user, account_email="second@example.com")
    revoked = CredentialFactory(user=user, account_email="revoked@example.com", invalid=True)
    idle = CredentialFactory(user=user, account_email="idle@example.com")
    SelectedCalendarFactory(credential=first, calendar_id="b@example.com")
    SelectedCalendarFactory(credential=first, calendar_id="a@example.com")
    SelectedCalendarFactory(credential=first, calendar_id="off@example.com", enabled=False)
    SelectedCalendarFactory(credential=second, calendar_id="c@example.com")
    SelectedCalendarFactory(credential=revoked, calendar_id="revoked@example.com")
    SelectedCalendarFactory(credential=idle, enabled=False)
    SelectedCalendarFactory(calendar_id="someone-else@example.com")

    queries = user_queries(user=user, start=utc(2026, 3, 10), end=utc(2026, 3, 12))

    march = (utc(2026, 3, 1), utc(2026, 4, 1))
    assert [(q.credential, q.calendar_ids, (q.time_min, q.time_max)) for q in queries] == [
        (first, ["a@example.com", "b@example.com"], march),
        (second, ["c@example.com"], march),
    ]


def test_a_user_without_calendars_has_no_queries(user: Any) -> None:
    assert user_queries(user=user, start=utc(2026, 3, 10), end=utc(2026, 3, 12)) == []
    assert live_busy(user=user, start=utc(2026, 3, 10), end=utc(2026, 3, 12)) == []


def test_live_busy_is_the_emulators_freebusy_and_keeps_each_answer(
    two_accounts: Mirror, emulator: EmulatorClient
) -> None:
    start, end = two_accounts.now, two_accounts.now + timedelta(days=7)
    kept: list[tuple[FreeBusyQuery, dict[str, Any]]] = []

    def keep(query: FreeBusyQuery, value: dict[str, Any]) -> None:
        kept.append((query, value))

    busy = live_busy(user=two_accounts.user, start=start, end=end, keep=keep)

    assert busy == two_accounts.google_busy(start, end)
    hour = timedelta(hours=1)
    first = two_accounts.now + 2 * hour
    assert busy[0] == (first, first + 1.5 * hour)  # the two accounts' overlap, merged
    assert len(busy) == 4
    queries = user_queries(user=two_accounts.user, start=start, end=end)
    assert [query for query, _ in kept] == queries
    assert [sorted(value["calendars"]) for _, value in kept] == [q.calendar_ids for q in queries]
    assert [r["account"] for r in freebusy_requests(emulator)] == [
        two_accounts.email,
        SECOND_ACCOUNT,
    ]


def test_fetch_freebusy_answers_in_googles_json_shape(ada: Mirror) -> None:
    credential = ada.selected().credential
    query = FreeBusyQuery(
        credential=credential,
        calendar_ids=[ada.email, "gone@example.com"],
        time_min=utc(2026, 3, 1),
        time_max=utc(2026, 4, 1),
    )

    value = fetch_freebusy(query)

    assert value == {
        "kind": "calendar#freeBusy",
        "timeMin": "2026-03-01T00:00:00Z",
        "timeMax": "2026-04-01T00:00:00Z",
        "calendars": {
            ada.email: {
                "busy": [
                    {"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T15:00:00Z"},
                    {"start": "2026-03-03T14:00:00Z", "end": "2026-03-03T15:00:00Z"},
                    {"start": "2026-03-04T14:00:00Z", "end": "2026-03-04T15:00:00Z"},
                ]
            },
            "gone@example.com": {"busy": [], "errors": [{"reason": "notFound"}]},
        },
    }
    assert busy_from_value(value, [ada.email]) == ada.google_busy(query.time_min, query.time_max)


@pytest.mark.parametrize(
    ("errors", "raised", "reason"),
    [
        ([{"domain": "global", "reason": "notFound"}], CalendarNotFound, "notFound"),
        ([{"domain": "global", "reason": "internalError"}], GoogleUnavailable, "internalError"),
        ([{"reason": "notFound"}, {"reason": "backendError"}], GoogleUnavailable, "backendError"),
        ([{"domain": "global"}], GoogleUnavailable, "unknown"),
        ("broken", GoogleUnavailable, "unknown"),
        (["broken"], GoogleUnavailable, "unknown"),
    ],
    ids=["not-found", "internal", "not-found-and-transient", "no-reason", "not-a-list", "junk"],
)
def test_an_entry_with_errors_is_never_read_as_free(
    errors: Any, raised: type[GoogleError], reason: str
) -> None:
    value = {
        "calendars": {
            "ok@example.com": {
                "busy": [{"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T15:00:00Z"}]
            },
            "bad@example.com": {"busy": [], "errors": errors},
        }
    }
    assert busy_from_value(value, ["ok@example.com"]) == [
        (utc(2026, 3, 2, 14), utc(2026, 3, 2, 15))
    ]
    with pytest.raises(raised) as caught:
        busy_from_value(value, ["ok@example.com", "bad@example.com"])
    assert caught.value.reason == reason and "bad@example.com" in str(caught.value)


def test_live_busy_keeps_the_answer_then_refuses_an_unreadable_calendar(
    ada: Mirror, emulator: EmulatorClient
) -> None:
    emulator.fail_freebusy(ada.email, reason="backendError")
    kept: list[dict[str, Any]] = []
    start, end = ada.now, ada.now + timedelta(days=7)

    with pytest.raises(GoogleUnavailable):
        live_busy(user=ada.user, start=start, end=end, keep=lambda _, value: kept.append(value))

    assert [value["calendars"][ada.email] for value in kept] == [
        {"busy": [], "errors": [{"reason": "backendError"}]}
    ]
    assert live_busy(user=ada.user, start=start, end=end) == ada.google_busy(start, end)
