"""sync_calendars and cleanup_calendar_cache through call_command, against the emulator."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import CalendarCache, CalendarEvent, CalendarSyncToken, SelectedCalendar
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.factories import (
    CalendarCacheFactory,
    CalendarEventFactory,
    CalendarSyncTokenFactory,
    CredentialFactory,
    TeamFactory,
)
from tests.markers import committing

pytestmark = pytest.mark.django_db


def summary(out: str) -> dict[str, int]:
    """The summary table as {label: number}."""
    rows = re.findall(r"^  (\S.*?)\s{2,}(\d+)$", out, flags=re.MULTILINE)
    return {label: int(value) for label, value in rows}


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def two_users(emulator: EmulatorClient, write_flag_on: None) -> tuple[Mirror, Mirror]:
    ada = make_mirror(emulator, "ada@example.com")
    grace = make_mirror(emulator, "grace@example.com", "America/Los_Angeles")
    for mirror in (ada, grace):
        start = timezone.now() + timedelta(days=1)
        emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    return ada, grace


def test_sync_all_prints_a_summary(two_users: tuple[Mirror, Mirror]) -> None:
    out, _ = run("sync_calendars")
    table = summary(out)
    assert table["calendars"] == 2 and table["synced (full)"] == 2
    assert table["events upserted"] == 2 and table["failed"] == 0
    assert CalendarEvent.objects.count() == 2
    out, _ = run("sync_calendars")
    assert summary(out)["synced (incremental)"] == 2


def test_sync_filters_by_user_team_credential_and_calendar(
    two_users: tuple[Mirror, Mirror],
) -> None:
    ada, grace = two_users
    run("sync_calendars", "--user", "ADA@example.com", "--quiet")  # the connected account
    assert set(CalendarEvent.objects.values_list("calendar_id", flat=True)) == {"ada@example.com"}
    team = TeamFactory(slug="acme", members=[grace.user])
    out, _ = run("sync_calendars", "--team", team.slug)
    assert summary(out)["calendars"] == 1
    credential_id = SelectedCalendar.objects.get(calendar_id="grace@example.com").credential_id
    out, _ = run(
        "sync_calendars", "--credential", str(credential_id), "--calendar", "grace@example.com"
    )
    assert summary(out)["synced (incremental)"] == 1
    out, _ = run("sync_calendars", "--user", grace.user.email, "--calendar", "grace@example.com")
    assert summary(out)["synced (incremental)"] == 1
    out, _ = run("sync_calendars", "--user", str(ada.user.pk), "--calendar", "nope@example.com")
    assert "No enabled calendar matches." in out


@committing  # worker threads use their own connections
def test_sync_with_workers(two_users: tuple[Mirror, Mirror]) -> None:
    out, _ = run("sync_calendars", "--workers", "2", "--full")
    assert summary(out)["synced (full)"] == 2


def test_failed_calendar_exits_1_and_names_the_reason(
    two_users: tuple[Mirror, Mirror], emulator: EmulatorClient, settings: object
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1  # type: ignore[attr-defined]
    emulator.fail_next(1, status=500, path="/calendars/ada%40example.com/events")
    emulator.fail_next(1, status=500, path="/calendars/ada@example.com/events")
    with pytest.raises(CommandError, match="1 of 2 calendar") as caught:
        call_command("sync_calendars", stdout=(out := StringIO()))
    assert caught.value.returncode == 1
    assert "FAILED ada@example.com" in out.getvalue()
    assert CalendarSyncToken.objects.get(calendar_id="ada@example.com").last_error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody@example.com"], "Unknown user 'nobody@example.com'"),
        (["--user", "424242"], "Unknown user '424242'"),
        (["--team", "no-such-team"], "Unknown team 'no-such-team'"),
        (["--credential", "424242"], "Unknown credential 424242"),
        (["--workers", "0"], "--workers must be between 1"),
        (["--enqueue"], "--enqueue needs a Celery broker"),
    ],
)
def test_bad_arguments_are_command_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("sync_calendars", *args)


def test_cleanup_deletes_old_events_in_batches(settings: object) -> None:
    now = timezone.now()
    credential = CredentialFactory()
    old = [
        CalendarEventFactory(
            credential=credential,
            start_time=now - timedelta(days=100 + i),
            end_time=now - timedelta(days=100 + i) + timedelta(hours=1),
        )
        for i in range(7)
    ]
    # began before the cutoff but ends after it: kept
    long_one = CalendarEventFactory(
        credential=credential,
        start_time=now - timedelta(days=95),
        end_time=now - timedelta(days=80),
    )
    recent = CalendarEventFactory(
        credential=credential, start_time=now, end_time=now + timedelta(hours=1)
    )
    token = CalendarSyncTokenFactory(
        credential=credential, calendar_id="primary", window_start=now - timedelta(days=120)
    )
    CalendarCacheFactory(credential=credential, expires_at=now - timedelta(seconds=1))
    fresh_json = CalendarCacheFactory(credential=credential)
    orphan = CalendarSyncTokenFactory(credential=credential, calendar_id="deselected@example.com")
    SelectedCalendar.objects.create(credential=credential, calendar_id="primary")

    out, _ = run("cleanup_calendar_cache", "--dry-run")
    assert "Would delete 7 event(s)" in out and "1 orphan sync token(s)" in out
    assert CalendarEvent.objects.count() == 9

    out, _ = run("cleanup_calendar_cache", "--batch-size", "2")
    assert "Deleted 7 event(s)" in out and "events/s" in out
    assert set(CalendarEvent.objects.values_list("pk", flat=True)) == {long_one.pk, recent.pk}
    assert not CalendarEvent.objects.filter(pk__in=[e.pk for e in old]).exists()
    assert list(CalendarCache.objects.values_list("pk", flat=True)) == [fresh_json.pk]
    assert not CalendarSyncToken.objects.filter(pk=orphan.pk).exists()
    token.refresh_from_db()
    assert token.window_start is not None
    assert abs(token.window_start - (now - timedelta(days=90))) < timedelta(minutes=1)


def test_cleanup_days_option_and_bad_input() -> None:
    now = timezone.now()
    CalendarEventFactory(start_time=now - timedelta(days=11), end_time=now - timedelta(days=10))
    _, err = run("cleanup_calendar_cache", "--days", "5")
    assert "inside the synced window" in err
    assert not CalendarEvent.objects.exists()
    with pytest.raises(CommandError, match="cannot be negative"):
        call_command("cleanup_calendar_cache", "--days", "-1")
    with pytest.raises(CommandError, match="batch-size"):
        call_command("cleanup_calendar_cache", "--batch-size", "0")
