"""calcache.accounts.selection: the calendar picker's reads and writes, against the emulator."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from calcache.accounts.selection import (
    SelectionChange,
    account_calendars,
    calendar_choices,
    select_calendars,
)
from calcache.emulator import EmulatorClient
from calcache.exceptions import CredentialInvalid
from calcache.google.types import CalendarInfo
from calcache.models import Credential, PushChannel, SelectedCalendar
from calcache.services import connect_google_account

pytestmark = pytest.mark.django_db

ADA = "ada@example.com"
WORK = "work@group.calendar.google.com"


def add_ada(emulator: EmulatorClient) -> dict[str, Any]:
    """Ada's Google account: her primary calendar and a "Work" one; her token."""
    emulator.add_account(ADA, time_zone="Europe/London")
    emulator.add_calendar(ADA, calendar_id=WORK, summary="Work", time_zone="Europe/Berlin")
    return emulator.authorized_token(ADA)


@pytest.fixture
def credential(emulator: EmulatorClient, user: Any) -> Credential:
    """Ada's account connected: her primary calendar mirrored."""
    return connect_google_account(user=user, token=add_ada(emulator))


@pytest.fixture
def listed(credential: Credential) -> list[CalendarInfo]:
    return account_calendars(credential=credential)


def select(
    credential: Credential, listed: Iterable[CalendarInfo], *calendar_ids: str
) -> SelectionChange:
    return select_calendars(credential=credential, calendar_ids=calendar_ids, calendars_info=listed)


def rows(credential: Credential) -> dict[str, tuple[int, bool]]:
    """calendar id -> (row id, enabled) of every SelectedCalendar of the credential."""
    return {
        row.calendar_id: (row.pk, row.enabled)
        for row in SelectedCalendar.objects.filter(credential=credential)
    }


def ticked(credential: Credential, listed: Iterable[CalendarInfo]) -> list[tuple[str, bool]]:
    choices = calendar_choices(credential=credential, calendars_info=listed)
    return [(choice.calendar.id, choice.selected) for choice in choices]


def test_the_calendar_list_puts_the_primary_first_then_sorts_by_name(
    credential: Credential, emulator: EmulatorClient
) -> None:
    emulator.add_calendar(ADA, calendar_id="a@group.calendar.google.com", summary="Aardvark")
    listed = account_calendars(credential=credential)
    assert [c.id for c in listed] == [ADA, "a@group.calendar.google.com", WORK]
    assert [c.primary for c in listed] == [True, False, False]
    assert (listed[0].time_zone, listed[2].time_zone) == ("Europe/London", "Europe/Berlin")


def test_a_refused_account_raises_and_is_marked_invalid(
    credential: Credential, emulator: EmulatorClient
) -> None:
    emulator.revoke(ADA)
    emulator.expire_access_tokens(ADA)
    with pytest.raises(CredentialInvalid):
        account_calendars(credential=credential)
    credential.refresh_from_db()
    assert credential.invalid and credential.invalid_reason


def test_choices_mark_the_calendars_mirrored_now(
    credential: Credential, listed: list[CalendarInfo]
) -> None:
    assert ticked(credential, listed) == [(ADA, True), (WORK, False)]
    select(credential, listed, WORK)
    assert ticked(credential, listed) == [(ADA, False), (WORK, True)]


def test_a_selection_reports_what_it_selected_deselected_and_kept(
    credential: Credential, listed: list[CalendarInfo]
) -> None:
    both = select(credential, listed, ADA, WORK)
    assert (both.selected, both.deselected, both.kept) == ([WORK], [], [ADA])
    assert both.changed and both.mirrored == [ADA, WORK]
    work = SelectedCalendar.objects.get(calendar_id=WORK)
    assert (work.time_zone, work.is_primary, work.enabled) == ("Europe/Berlin", False, True)
    only_work = select(credential, listed, WORK)
    assert (only_work.selected, only_work.deselected, only_work.kept) == ([], [ADA], [WORK])
    again = select(credential, listed, WORK)
    assert not again.changed and again.mirrored == [WORK]
    assert not PushChannel.objects.exists()  # webhooks off: no channels


def test_an_unknown_calendar_raises_and_changes_nothing(
    credential: Credential, listed: list[CalendarInfo]
) -> None:
    before = rows(credential)
    with pytest.raises(ValueError, match="not in the account's calendar list: someone@"):
        select(credential, listed, WORK, "someone@example.com")
    assert rows(credential) == before


def test_deselected_rows_are_kept_disabled_and_reselection_reenables_them(
    credential: Credential, listed: list[CalendarInfo]
) -> None:
    select(credential, listed, ADA, WORK)
    ids = {calendar_id: pk for calendar_id, (pk, _) in rows(credential).items()}
    assert select(credential, listed).deselected == [ADA, WORK]
    assert rows(credential) == {ADA: (ids[ADA], False), WORK: (ids[WORK], False)}
    assert select(credential, listed, WORK).selected == [WORK]
    assert rows(credential) == {ADA: (ids[ADA], False), WORK: (ids[WORK], True)}


def test_calendars_missing_from_the_list_are_left_alone(
    credential: Credential, listed: list[CalendarInfo]
) -> None:
    select(credential, listed, ADA, WORK)
    primary_only = [c for c in listed if c.primary]
    assert select(credential, primary_only, ADA).kept == [ADA]
    assert {calendar_id: on for calendar_id, (_, on) in rows(credential).items()} == {
        ADA: True,
        WORK: True,
    }


def test_the_primary_alias_row_is_the_primary_calendars(
    emulator: EmulatorClient, user: Any
) -> None:
    token = add_ada(emulator)
    emulator.fail_next(2, status=503, path="/calendarList")  # Google down while connecting
    credential = connect_google_account(user=user, token=token)
    alias = SelectedCalendar.objects.get(credential=credential)
    assert (alias.calendar_id, alias.enabled) == ("primary", True)
    listed = account_calendars(credential=credential)
    assert ticked(credential, listed) == [(ADA, True), (WORK, False)]
    assert select(credential, listed, ADA).kept == [ADA]
    assert rows(credential) == {"primary": (alias.pk, True)}  # no second row for it
    assert select(credential, listed, WORK).deselected == [ADA]
    assert rows(credential)["primary"] == (alias.pk, False)


@pytest.mark.usefixtures("webhooks_on")
def test_with_webhooks_a_new_selection_gets_a_channel_and_a_deselection_stops_it(
    credential: Credential, listed: list[CalendarInfo]
) -> None:
    change = select(credential, listed, ADA, WORK)
    assert change.channel_failures == []
    channel = PushChannel.objects.get()  # the kept primary calendar is not watched anew
    assert channel.selected_calendar.calendar_id == WORK and channel.live
    select(credential, listed, ADA)
    channel.refresh_from_db()
    assert channel.stopped_at is not None


@pytest.mark.usefixtures("webhooks_on")
def test_a_watch_google_refuses_is_listed_and_the_selection_kept(
    credential: Credential, listed: list[CalendarInfo], emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=400, reason="invalid", path="/events/watch")
    change = select(credential, listed, ADA, WORK)
    assert change.selected == [WORK] and change.channel_failures == [WORK]
    assert rows(credential)[WORK][1] is True
    assert not PushChannel.objects.exists()
