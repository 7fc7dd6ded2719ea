"""calcache.views.me: the me/ page through the Django test client, against the emulator."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import SelectedCalendar
from calcache.rollout.stages import set_flag
from calcache.views.me import week_monday
from flags.names import READ_FLAG
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
ME = "/calendar-cache/me/"
MONDAY = date(2026, 3, 2)  # the emulator's clock in make_mirror


@pytest.fixture
def ada(emulator: EmulatorClient, client: Client) -> Mirror:
    mirror = make_mirror(emulator)
    for day, hour in ((0, 14), (2, 9), (2, 23)):  # the last one runs past midnight
        start = datetime(2026, 3, 2 + day, hour, 0, tzinfo=UTC)
        emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=2))
    start = datetime(2026, 3, 10, 8, 30, tzinfo=UTC)  # the week after
    emulator.add_event(mirror.email, start=start, end=start + timedelta(minutes=45))
    client.force_login(mirror.user)
    return mirror


def blocks(html: str) -> list[tuple[str, str]]:
    """(data-start, data-end) of the summary list: one per busy interval."""
    listed = re.search(r'<ol id="busy-list">(.*?)</ol>', html, re.S)
    if listed is None:
        return []
    return re.findall(r'<li data-start="([^"]+)" data-end="([^"]+)"', listed.group(1))


def test_me_shows_the_weeks_busy_blocks_and_the_source(ada: Mirror, client: Client) -> None:
    response = client.get(ME, {"week": "2026-03-02"})
    assert response.status_code == 200
    html = response.content.decode()
    expected = ada.google_busy(datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
    assert len(expected) == 3
    assert blocks(html) == [(s.isoformat(), e.isoformat()) for s, e in expected]
    assert 'data-source="live"' in html
    assert "3 busy blocks" in html
    assert "Week of 2 March 2026" in html
    # Placed by time: 14:00 is 58.333% down Monday's column, two hours are 8.333% of it.
    monday = html.split('data-date="2026-03-02"')[1].split('data-date="2026-03-03"')[0]
    assert "top: 58.333%; height: 8.333%" in monday
    # The block past midnight is drawn on both days, with its whole interval kept.
    wednesday = html.split('data-date="2026-03-04"')[1].split('data-date="2026-03-05"')[0]
    thursday = html.split('data-date="2026-03-05"')[1].split('data-date="2026-03-06"')[0]
    assert ">23:00–24:00<" in wednesday and ">00:00–01:00<" in thursday
    assert thursday.count('data-start="2026-03-04T23:00:00+00:00"') == 1

    assert client.get(ME, {"week": "2026-03-02"}).context["source"] == "json"


def test_me_reads_sql_when_the_rollout_says_so(
    ada: Mirror, client: Client, write_flag_on: None
) -> None:
    ada.sync()
    team = TeamFactory(slug="internal", members=[ada.user])
    set_flag(name=READ_FLAG, team=team.slug)
    response = client.get(ME, {"week": "2026-03-02"})
    assert response.context["source"] == "sql"
    assert 'data-source="sql"' in response.content.decode()
    assert len(blocks(response.content.decode())) == 3


def test_me_pages_between_weeks(ada: Mirror, client: Client) -> None:
    html = client.get(ME, {"week": "2026-03-02"}).content.decode()
    assert 'href="?week=2026-02-23"' in html and 'href="?week=2026-03-09"' in html
    following = client.get(ME, {"week": "2026-03-09"})
    assert blocks(following.content.decode()) == [
        ("2026-03-10T08:30:00+00:00", "2026-03-10T09:15:00+00:00")
    ]
    before = client.get(ME, {"week": "2026-02-23"}).content.decode()
    assert blocks(before) == [] and "0 busy blocks" in before


@pytest.mark.parametrize("raw", ["", "   "])
def test_me_without_a_week_is_this_week(ada: Mirror, client: Client, raw: str) -> None:
    response = client.get(ME, {"week": raw})
    assert response.status_code == 200
    today = timezone.localdate()
    assert response.context["monday"] == today - timedelta(days=today.weekday())


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "2026-13-01",
        "2026-03-02\x00",
        "\x00",
        "9" * 5000,
        "99999999999999999999999",
        "-1",
        "0001-01-01",
        "9999-12-27",
        "9999-12-13",  # the reproducer: the widened window ran past year 9999
        "9999-12-31",
        "2100-01-04",
        "1969-12-29",
    ],
)
def test_me_bad_week_is_a_friendly_400(ada: Mirror, client: Client, raw: str) -> None:
    response = client.get(ME, {"week": raw})
    assert response.status_code == 400
    html = response.content.decode()
    assert "That week cannot be shown" in html and 'href="/calendar-cache/me/"' in html
    assert "Traceback" not in html and 'id="busy-list"' not in html


def test_the_first_and_last_weeks_can_be_shown(ada: Mirror, client: Client) -> None:
    for raw, monday in (("1970-01-07", date(1970, 1, 5)), ("2099-12-27", date(2099, 12, 21))):
        response = client.get(ME, {"week": raw})
        assert response.status_code == 200 and response.context["monday"] == monday
    # and link to no week beyond them
    first = client.get(ME, {"week": "1970-01-05"}).content.decode()
    assert 'id="previous-week"' not in first and 'id="next-week"' in first
    last = client.get(ME, {"week": "2099-12-21"}).content.decode()
    assert 'id="next-week"' not in last and 'id="previous-week"' in last


def test_a_day_inside_a_week_means_its_monday() -> None:
    assert week_monday("2026-03-05", today=date(2026, 11, 24)) == MONDAY
    assert week_monday(None, today=date(2026, 11, 24)) == date(2026, 11, 23)
    with pytest.raises(ValueError, match="outside the weeks"):
        week_monday("9999-12-13", today=date(2026, 11, 24))


def test_me_when_google_is_unavailable(ada: Mirror, client: Client) -> None:
    ada.emulator.fail_next(20, status=503, reason="backendError")
    response = client.get(ME, {"week": "2026-03-02"})
    assert response.status_code == 503
    html = response.content.decode()
    assert "can't be reached right now" in html
    assert "Traceback" not in html and 'id="busy-list"' not in html


def test_me_links_the_calendars_page(ada: Mirror, client: Client) -> None:
    html = client.get(ME, {"week": "2026-03-02"}).content.decode()
    assert '<a href="/calendar-cache/calendars/" id="calendars-link">' in html
    assert '<a href="/calendar-cache/calendars/" id="nav-calendars">' in html


@pytest.mark.parametrize("configured", [True, False])
def test_me_before_any_calendar_is_connected(
    client: Client, settings: Any, configured: bool
) -> None:
    settings.CALCACHE_GOOGLE_CLIENT_ID = "client-id" if configured else ""
    client.force_login(UserFactory())
    response = client.get(ME)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No calendar is connected yet" in html
    connect = "/calendar-cache/connect/google/" if configured else "/calendar-cache/calendars/"
    assert f'id="connect-calendar" href="{connect}"' in html
    assert "the whole week is free" not in html and 'id="week"' not in html
    assert "source" not in response.context
    assert "CALCACHE_GOOGLE" not in html  # the operator hint is for staff, on calendars/


def test_me_when_every_calendar_is_switched_off(ada: Mirror, client: Client) -> None:
    SelectedCalendar.objects.filter(credential__user=ada.user).update(enabled=False)
    html = client.get(ME, {"week": "2026-03-02"}).content.decode()
    assert "None of your calendars is switched on" in html
    assert 'id="choose-calendars" href="/calendar-cache/calendars/"' in html
    assert "the whole week is free" not in html and 'id="busy-list"' not in html


def test_a_free_week_with_calendars_says_so(ada: Mirror, client: Client) -> None:
    html = client.get(ME, {"week": "2026-04-06"}).content.decode()
    assert "Nothing busy: the whole week is free." in html and "0 busy blocks" in html


def test_me_needs_login(client: Client) -> None:
    response = client.get(ME)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
