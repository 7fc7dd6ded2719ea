"""calcache's signals: who sends them, when, with what, and that a receiver that raises
breaks nothing (it is logged)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.dispatch import Signal
from waffle import switch_is_active

from calcache import signals
from calcache.emulator import EmulatorClient
from calcache.exceptions import CredentialInvalid
from calcache.models import Credential, RolloutEvent, SelectedCalendar
from calcache.rollout.shadow import check_rollback
from calcache.rollout.stages import set_flag
from calcache.services import connect_google_account
from calcache.sync.engine import SyncOutcome, sync_calendar, sync_calendars
from flags.models import Flag
from flags.names import KILL_SWITCH, READ_FLAG, WRITE_FLAG
from tests.factories import CacheComparisonFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EMAIL = "ada@example.com"
Calls = list[dict[str, Any]]
Capture = Callable[..., Any]


@pytest.fixture
def received() -> Iterator[Callable[[Signal], Calls]]:
    """``received(signal)``: a list that each send of ``signal`` appends its kwargs to."""
    connected: list[tuple[Signal, Callable[..., None]]] = []

    def listen(signal: Signal) -> Calls:
        calls: Calls = []

        def receiver(**kwargs: Any) -> None:
            calls.append(kwargs)

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return calls

    yield listen
    for signal, receiver in connected:
        signal.disconnect(receiver)


@pytest.fixture
def broken_receiver() -> Iterator[Callable[[Signal], None]]:
    """``broken_receiver(signal)`` connects a receiver that raises."""
    connected: list[tuple[Signal, Callable[..., None]]] = []

    def connect(signal: Signal) -> None:
        def receiver(**kwargs: Any) -> None:
            raise RuntimeError("receiver bug")

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


def connect(emulator: EmulatorClient, user: Any) -> Credential:
    emulator.set_clock(NOW)
    token = emulator.add_account(EMAIL, time_zone="Europe/London")
    return connect_google_account(user=user, token=token)


def assert_logged_receiver_error(caplog: pytest.LogCaptureFixture, name: str) -> None:
    records = [r for r in caplog.records if r.name == "calcache.signals"]
    assert [r.levelname for r in records] == ["ERROR"]
    assert name in records[0].getMessage()
    assert records[0].exc_info is not None and "receiver bug" in str(records[0].exc_info[1])


# --- account_connected -------------------------------------------------------------------


def test_account_connected_is_sent_on_commit_with_created(
    emulator: EmulatorClient,
    received: Callable[[Signal], Calls],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    calls = received(signals.account_connected)
    user = UserFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        credential = connect(emulator, user)
        assert calls == []  # not before the transaction commits
    for callback in callbacks:
        callback()
    assert calls == [
        {"signal": signals.account_connected, "sender": Credential}
        | {"credential": credential, "user": user, "created": True}
    ]
    with django_capture_on_commit_callbacks(execute=True):
        again = connect_google_account(user=user, token=emulator.add_account(EMAIL))
    assert again.pk == credential.pk
    assert calls[1]["created"] is False and calls[1]["credential"].pk == credential.pk


def test_a_refused_token_sends_nothing(
    emulator: EmulatorClient,
    received: Callable[[Signal], Calls],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    calls = received(signals.account_connected)
    token = emulator.add_account(EMAIL)
    token["token"] = "revoked"
    token["refresh_token"] = "revoked"
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CredentialInvalid):
        connect_google_account(user=UserFactory(), token=token)
    assert calls == []
    assert not Credential.objects.exists()


def test_a_raising_receiver_does_not_break_the_connect(
    emulator: EmulatorClient,
    broken_receiver: Callable[[Signal], None],
    received: Callable[[Signal], Calls],
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    broken_receiver(signals.account_connected)
    calls = received(signals.account_connected)  # connected after the broken one
    with django_capture_on_commit_callbacks(execute=True):
        credential = connect(emulator, UserFactory())
    assert Credential.objects.filter(pk=credential.pk).exists()
    assert len(calls) == 1
    assert_logged_receiver_error(caplog, "account_connected")


# --- calendar_synced -----------------------------------------------------------------------


def test_calendar_synced_for_each_run_with_its_outcome_and_counts(
    emulator: EmulatorClient, write_flag_on: None, received: Callable[[Signal], Calls]
) -> None:
    connect(emulator, UserFactory())
    for hour in (1, 3, 5):
        start = NOW + timedelta(hours=hour)
        emulator.add_event(EMAIL, start=start, end=start + timedelta(minutes=30))
    calls = received(signals.calendar_synced)
    selected = SelectedCalendar.objects.get()

    first = sync_calendar(selected, now=NOW)
    emulator.add_event(EMAIL, start=NOW + timedelta(days=1), end=NOW + timedelta(days=1, hours=1))
    second = sync_calendar(selected, now=NOW)
    Flag.objects.filter(name=WRITE_FLAG).update(everyone=None)
    Flag.objects.get(name=WRITE_FLAG).flush()
    third = sync_calendar(selected, now=NOW)

    assert [c["result"] for c in calls] == [first, second, third]
    assert [(c["outcome"], c["events_written"], c["events_deleted"]) for c in calls] == [
        ("full", 3, 0),
        ("incremental", 1, 0),
        ("flag_off", 0, 0),
    ]
    assert third.outcome == SyncOutcome.FLAG_OFF
    assert all(c["sender"] is SelectedCalendar for c in calls)
    assert all(c["selected_calendar"].pk == selected.pk for c in calls)


def test_a_failed_sync_is_sent_too(
    emulator: EmulatorClient, write_flag_on: None, received: Callable[[Signal], Calls]
) -> None:
    connect(emulator, UserFactory())
    calls = received(signals.calendar_synced)
    emulator.fail_next(1, status=400, reason="invalid", path="/events")
    result = sync_calendar(SelectedCalendar.objects.get(), now=NOW)
    assert result.outcome == SyncOutcome.FAILED
    assert [(c["outcome"], c["result"].error) for c in calls] == [("failed", result.error)]


def test_a_database_failure_is_sent_once_whoever_called(
    emulator: EmulatorClient, write_flag_on: None, received: Callable[[Signal], Calls]
) -> None:
    connect(emulator, UserFactory())
    emulator.add_event(EMAIL, start=NOW, end=NOW + timedelta(hours=1))
    calls = received(signals.calendar_synced)
    selected = SelectedCalendar.objects.get()
    down = OperationalError("connection to server at 127.0.0.1 failed")
    with mock.patch("calcache.sync.engine.apply_page", side_effect=down):
        # a background job calls sync_calendar and handles the error itself
        with pytest.raises(OperationalError):
            sync_calendar(selected, now=NOW)
        assert [(c["outcome"], c["result"].error) for c in calls] == [
            ("failed", "database unavailable: OperationalError: connection to server at "
             "127.0.0.1 failed")
        ]  # fmt: skip
        # sync_calendars turns it into a failed result without telling the receivers again
        (result,) = sync_calendars([selected], now=NOW)
    assert result.outcome == SyncOutcome.FAILED
    assert [c["outcome"] for c in calls] == ["failed", "failed"]
    assert calls[1]["result"].error == result.error


def test_a_raising_receiver_does_not_break_a_sync(
    emulator: EmulatorClient,
    write_flag_on: None,
    broken_receiver: Callable[[Signal], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    connect(emulator, UserFactory())
    emulator.add_event(EMAIL, start=NOW, end=NOW + timedelta(hours=1))
    broken_receiver(signals.calendar_synced)
    result = sync_calendar(SelectedCalendar.objects.get(), now=NOW)
    assert result.outcome == SyncOutcome.FULL and result.upserted == 1
    assert_logged_receiver_error(caplog, "calendar_synced")


# --- rollout_changed and rollback_triggered ---------------------------------------------


def test_rollout_changed_on_commit_of_a_flag_change(
    received: Callable[[Signal], Calls], django_capture_on_commit_callbacks: Capture
) -> None:
    calls = received(signals.rollout_changed)
    team = TeamFactory(slug="core")
    actor = UserFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        event = set_flag(name=READ_FLAG, team=team.slug, actor=actor)
    assert calls == []
    for callback in callbacks:
        callback()
    assert calls == [{"signal": signals.rollout_changed, "sender": RolloutEvent, "event": event}]
    assert event.actor == actor and event.reason == "added team core"
    assert event.figures["before"]["teams"] == [] and event.figures["after"]["teams"] == ["core"]


def test_a_refused_flag_change_sends_nothing(
    received: Callable[[Signal], Calls], django_capture_on_commit_callbacks: Capture
) -> None:
    calls = received(signals.rollout_changed)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValueError):
        set_flag(name=READ_FLAG, team="no-such-team")
    assert calls == []
    assert not RolloutEvent.objects.exists()


def test_rollback_triggered_with_its_figures(
    settings: Any,
    received: Callable[[Signal], Calls],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    settings.CALCACHE_ROLLBACK_MIN_SAMPLES = 10
    settings.CALCACHE_ROLLBACK_MISMATCH_PERCENT = 5.0
    changed = received(signals.rollout_changed)
    rollbacks = received(signals.rollback_triggered)
    CacheComparisonFactory.create_batch(8, equal=True)
    CacheComparisonFactory.create_batch(2, equal=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert check_rollback() is True
        assert check_rollback() is False  # the switch is on already: nothing new
    assert switch_is_active(KILL_SWITCH)
    event = RolloutEvent.objects.get(action="automatic rollback")
    assert changed == [{"signal": signals.rollout_changed, "sender": RolloutEvent, "event": event}]
    assert rollbacks == [
        {"signal": signals.rollback_triggered, "sender": RolloutEvent}
        | {"event": event, "mismatches": 2, "samples": 10}
    ]


def test_a_raising_rollback_receiver_still_leaves_the_switch_on(
    settings: Any,
    broken_receiver: Callable[[Signal], None],
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    settings.CALCACHE_ROLLBACK_MIN_SAMPLES = 4
    broken_receiver(signals.rollback_triggered)
    CacheComparisonFactory.create_batch(4, equal=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert check_rollback() is True
    assert switch_is_active(KILL_SWITCH)
    assert_logged_receiver_error(caplog, "rollback_triggered")
