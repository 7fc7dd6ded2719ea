"""sync_calendars while the database fails: per calendar, with a summary, exit status 1,
and the errors recorded once the database answers.

The database is made to fail here by patching; tests/calcache/test_outages.py stops a
real PostgreSQL server in the middle of a run instead.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import CalendarSyncToken, SelectedCalendar
from calcache.rollout.monitoring import calendar_health_list
from calcache.sync import engine
from tests.calcache.management.test_sync_calendars import summary
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.markers import committing

pytestmark = pytest.mark.django_db
DOWN = OperationalError(
    'connection to server at "127.0.0.1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?"
)


@pytest.fixture
def three(emulator: EmulatorClient, write_flag_on: None) -> list[Mirror]:
    mirrors = [make_mirror(emulator, f"{name}@example.com") for name in ("ada", "grace", "linus")]
    for mirror in mirrors:
        start = timezone.now() + timedelta(days=1)
        emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    return mirrors


def failing_for(*calendar_ids: str, error: Exception = DOWN) -> Any:
    """sync_calendar raises ``error`` for these calendars, as with the database gone."""
    real = engine.sync_calendar

    def sync(selected: SelectedCalendar, **kwargs: Any) -> engine.SyncResult:
        if selected.calendar_id in calendar_ids:
            raise error
        return real(selected, **kwargs)

    return mock.patch.object(engine, "sync_calendar", sync)


def run_failing(*args: str) -> tuple[CommandError, str, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("sync_calendars", *args, stdout=out, stderr=err)
    return caught.value, out.getvalue(), err.getvalue()


def test_each_calendar_fails_alone_and_the_summary_is_printed(three: list[Mirror]) -> None:
    with failing_for("grace@example.com", "linus@example.com"):
        error, out, _ = run_failing()
    assert error.returncode == 1 and str(error) == "2 of 3 calendar(s) failed."
    table = summary(out)
    assert (table["calendars"], table["synced (full)"], table["failed"]) == (3, 1, 2)
    failed = [line for line in out.splitlines() if line.startswith("  FAILED")]
    assert failed == [
        f"  FAILED {email}: database unavailable: OperationalError: connection to server at "
        '"127.0.0.1", port 5432 failed: Connection refused'
        for email in ("grace@example.com", "linus@example.com")
    ]
    assert "Traceback" not in out


def test_the_errors_are_recorded_for_the_dashboard(three: list[Mirror]) -> None:
    before = timezone.now()
    with failing_for("grace@example.com", error=InterfaceError("connection already closed")):
        run_failing()
    # grace was never synced: the failure creates her token row, with the error on it
    token = CalendarSyncToken.objects.get(calendar_id="grace@example.com")
    assert token.last_error == ("database unavailable: InterfaceError: connection already closed")
    assert token.last_error_at is not None and token.last_error_at >= before
    assert token.last_sync_at is None and not token.sync_token
    health = {row.calendar_id: row for row in calendar_health_list().calendars}
    assert health["grace@example.com"].state == "failing"
    assert health["ada@example.com"].last_error == ""


def test_the_next_sync_clears_the_error(three: list[Mirror]) -> None:
    with failing_for("ada@example.com"):
        run_failing()
    assert CalendarSyncToken.objects.get(calendar_id="ada@example.com").last_error
    call_command("sync_calendars", "--quiet")
    assert not CalendarSyncToken.objects.get(calendar_id="ada@example.com").last_error


def test_errors_wait_for_the_database_to_answer_again(three: list[Mirror]) -> None:
    real = engine._write_error
    attempts: list[str] = []

    def write(selected: SelectedCalendar, result: engine.SyncResult) -> None:
        attempts.append(selected.calendar_id)
        if len(attempts) == 1:  # still down at the end of the run, back a moment later
            raise DOWN
        real(selected, result)

    with failing_for("linus@example.com"), mock.patch.object(engine, "_write_error", write):
        _, out, err = run_failing("--db-wait", "60")
    assert attempts == ["linus@example.com", "linus@example.com"]
    assert "waiting up to 60 s for it to record 1 calendar error(s)." in err
    assert "not recorded" not in out
    assert CalendarSyncToken.objects.get(calendar_id="linus@example.com").last_error


def test_errors_the_database_never_takes_are_named(three: list[Mirror]) -> None:
    with (
        failing_for("ada@example.com", "linus@example.com"),
        mock.patch.object(engine, "_write_error", side_effect=DOWN),
    ):
        error, out, err = run_failing("--db-wait", "0")
    assert error.returncode == 1
    assert "  2 error(s) not recorded on the dashboard: the database is still unavailable" in out
    assert "waiting" not in err  # --db-wait 0: no wait
    assert summary(out)["failed"] == 2


def test_database_down_before_any_calendar_is_listed() -> None:
    with mock.patch("calcache.management.commands.sync_calendars.Command.select", side_effect=DOWN):
        error, out, _ = run_failing()
    assert error.returncode == 1
    assert str(error) == (
        "The database is unavailable (OperationalError: connection to server at "
        '"127.0.0.1", port 5432 failed: Connection refused); no calendar was synced.'
    )
    assert out == "Sync summary: no calendar synced, the database is unavailable.\n"


def test_tracebacks_only_at_verbosity_2(three: list[Mirror]) -> None:
    with failing_for("ada@example.com"):
        _, quiet_out, _ = run_failing()
        _, verbose_out, _ = run_failing("-v", "2")
    assert "Traceback" not in quiet_out
    assert "Traceback of ada@example.com:" in verbose_out
    assert "OperationalError: connection to server" in verbose_out


def test_a_sync_losing_the_database_midway_raises_without_a_traceback_log(
    three: list[Mirror], caplog: pytest.LogCaptureFixture
) -> None:
    ada = three[0]
    with (
        mock.patch("calcache.sync.engine.apply_page", side_effect=DOWN),
        mock.patch.object(engine, "_record_error") as record,
        pytest.raises(OperationalError),
    ):
        engine.sync_calendar(ada.selected())
    record.assert_not_called()  # it would fail the same way; the caller records it later
    assert not [r for r in caplog.records if r.exc_info]


@committing  # worker threads use their own connections
@pytest.mark.usefixtures("three")
def test_with_workers_each_failure_is_its_own() -> None:
    with failing_for("grace@example.com"):
        error, out, _ = run_failing("--workers", "3")
    assert str(error) == "1 of 3 calendar(s) failed."
    assert summary(out)["synced (full)"] == 2
    assert CalendarSyncToken.objects.get(calendar_id="grace@example.com").last_error
