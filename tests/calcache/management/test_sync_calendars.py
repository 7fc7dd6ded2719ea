"""The sync_calendars command through call_command, against the emulator."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from calcache.availability.json_cache import store_blob
from calcache.availability.live import live_busy
from calcache.emulator import EmulatorClient
from calcache.models import CalendarEvent, CalendarSyncToken, SelectedCalendar
from flags.models import Flag
from flags.names import WRITE_FLAG
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.celery_worker import producer_for
from tests.factories import TeamFactory, UserFactory
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


def test_filters_that_match_no_enabled_calendar_are_errors(
    two_users: tuple[Mirror, Mirror],
) -> None:
    ada, grace = two_users
    lonely = UserFactory(username="lonely")
    empty_team = TeamFactory(slug="empty", members=[lonely])
    SelectedCalendar.objects.filter(calendar_id="grace@example.com").update(enabled=False)
    cases = [
        (["--calendar", "no-such-id"], "No selected calendar matches --calendar 'no-such-id'"),
        (
            ["--user", str(ada.user.pk), "--calendar", "grace@example.com"],
            f"No selected calendar matches --user '{ada.user.pk}' --calendar 'grace@example.com'",
        ),
        (["--user", "lonely"], "No selected calendar matches --user 'lonely'"),
        (["--team", empty_team.slug], "No selected calendar matches --team 'empty'"),
        (
            ["--calendar", "grace@example.com"],
            "--calendar 'grace@example.com': 1 selected calendar(s) match, none of them enabled",
        ),
        (
            ["--credential", str(grace.selected().credential_id)],
            "1 selected calendar(s) match, none of them enabled",
        ),
    ]
    for args, message in cases:
        out = StringIO()
        with pytest.raises(CommandError) as caught:
            call_command("sync_calendars", *args, stdout=out)
        assert message in str(caught.value)
        assert "nothing was synced" in str(caught.value)
        assert caught.value.returncode == 1
        assert out.getvalue() == ""
    assert CalendarSyncToken.objects.filter(last_sync_at__isnull=False).count() == 0
    # Nothing to do without filters is no error (a cron on a fresh install, --dirty).
    SelectedCalendar.objects.update(enabled=False)
    assert "No enabled calendar matches." in run("sync_calendars")[0]


@pytest.fixture
def two_users_flag_off(emulator: EmulatorClient) -> tuple[Mirror, Mirror]:
    return make_mirror(emulator, "ada@example.com"), make_mirror(emulator, "grace@example.com")


def test_calendars_skipped_by_the_write_flag_are_named_with_the_fix(
    two_users_flag_off: tuple[Mirror, Mirror],
) -> None:
    out, _ = run("sync_calendars")
    assert summary(out)["skipped: write flag off"] == 2
    assert (
        "Nothing was written to the SQL tables: all 2 calendar(s) were skipped "
        "(2 write flag off)." in out
    )
    assert "2 calendar(s) skipped because calendar-cache-sql-write is off for their users" in out
    assert "calendar_cache_rollout set-write --team SLUG" in out
    assert not CalendarEvent.objects.exists()

    ada = two_users_flag_off[0]
    Flag.objects.get(name=WRITE_FLAG).users.add(ada.user)
    out, _ = run("sync_calendars")
    assert summary(out)["synced (full)"] == 1
    assert "Nothing was written" not in out
    assert "1 calendar(s) skipped because calendar-cache-sql-write is off" in out


def test_all_synced_mentions_no_skips(two_users: tuple[Mirror, Mirror]) -> None:
    out, _ = run("sync_calendars")
    assert "skipped because" not in out and "Nothing was written" not in out


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_verbosity_0_prints_nothing_but_errors(
    two_users: tuple[Mirror, Mirror],
    emulator: EmulatorClient,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)  # where the progress bar goes
    run("sync_calendars")
    assert "Syncing calendars" in terminal.getvalue()  # at a terminal, by default
    for quiet in (["-v", "0"], ["--quiet"]):
        terminal.seek(0)
        terminal.truncate()
        out, err = run("sync_calendars", *quiet)
        assert (out, err, terminal.getvalue()) == ("", "", "")

    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    emulator.fail_next(1, status=500, path="/calendars/ada%40example.com/events")
    emulator.fail_next(1, status=500, path="/calendars/ada@example.com/events")
    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 2 calendar") as caught:
        call_command("sync_calendars", "-v", "0", stdout=stdout, stderr=stderr)
    assert caught.value.returncode == 1
    assert stdout.getvalue() == ""
    assert "FAILED ada@example.com" in stderr.getvalue()
    assert "Sync summary" not in stderr.getvalue()


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


def test_dirty_refreshes_and_keeps_what_failed_marked(
    two_users: tuple[Mirror, Mirror], emulator: EmulatorClient, settings: Any
) -> None:
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    ada = two_users[0]
    now = timezone.now()
    live_busy(user=ada.user, start=now, end=now + timedelta(days=7), keep=store_blob)  # a blob
    marked = SelectedCalendar.objects.filter(pk=ada.selected().pk)
    marked.update(dirty_since=timezone.now())
    emulator.fail_next(1, status=503, reason="backendError", path="/events")
    with pytest.raises(CommandError, match="1 of 1 calendar"):
        run("sync_calendars", "--dirty")
    assert marked.get().dirty_since is not None  # the outage did not swallow the notice
    emulator.clear_requests()
    run("sync_calendars", "--dirty")
    paths = {request["path"].rsplit("/", 1)[-1] for request in emulator.requests()}
    assert {"events", "freeBusy"} <= paths  # SQL and the JSON blobs
    assert marked.get().dirty_since is None
    with pytest.raises(CommandError, match="--dirty refreshes"):
        call_command("sync_calendars", "--dirty", "--full")


def test_enqueue_refuses_workers_and_reports_an_unreachable_broker(
    two_users: tuple[Mirror, Mirror], settings: Any
) -> None:
    with producer_for("redis://127.0.0.1:1/0", settings):
        with pytest.raises(CommandError, match="--workers applies to syncs in this process"):
            call_command("sync_calendars", "--enqueue", "--workers", "2")
        with pytest.raises(CommandError, match=r"Could not reach the Celery broker at redis://"):
            run("sync_calendars", "--enqueue")
    assert not CalendarSyncToken.objects.filter(last_sync_at__isnull=False).exists()
