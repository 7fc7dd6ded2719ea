"""Which calendars of a connected account are mirrored: the calendar picker's reads and writes.

The picker asks Google for the account's calendarList (``account_calendars``),
shows it with the current choice (``calendar_choices``) and saves a new one
(``select_calendars``). Deselected calendars keep their rows, disabled, so their
sync state survives a later re-selection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from calcache.accounts.connection import PRIMARY_CALENDAR_ID
from calcache.conf import conf
from calcache.exceptions import CredentialInvalid, GoogleError
from calcache.google.credentials import client_for
from calcache.google.types import CalendarInfo
from calcache.models import Credential, SelectedCalendar
from calcache.push.channels import open_channel, stop_calendar_channels

logger = logging.getLogger("calcache.selection")

# A person is waiting for the page: one retry, not the sync's patient backoff.
INTERACTIVE_ATTEMPTS = 2


@dataclass(frozen=True)
class CalendarChoice:
    """One calendar of the account's calendarList and whether it is mirrored now."""

    calendar: CalendarInfo
    selected: bool


@dataclass
class SelectionChange:
    """What ``select_calendars`` did, by calendar id.

    ``selected``: newly mirrored (created or re-enabled); ``deselected``: disabled;
    ``kept``: mirrored before and after. ``channel_failures`` lists the push
    channels Google did not open; ``renew_calendar_channels`` opens them later.
    """

    selected: list[str] = field(default_factory=list)
    deselected: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    channel_failures: list[str] = field(default_factory=list)

    @property
    def mirrored(self) -> list[str]:
        """Every calendar mirrored after the change."""
        return self.kept + self.selected

    @property
    def changed(self) -> bool:
        return bool(self.selected or self.deselected)


def account_calendars(*, credential: Credential) -> list[CalendarInfo]:
    """The account's calendars from Google's calendarList, primary first.

    A token refreshed on the way is stored. Raises ``GoogleError``; on
    ``CredentialInvalid`` the credential is also marked invalid (reconnect needed).
    """
    client = client_for(credential, max_attempts=INTERACTIVE_ATTEMPTS)
    try:
        calendars = client.list_calendars()
    except CredentialInvalid as exc:
        credential.mark_invalid(str(exc))
        raise
    return sorted(calendars, key=lambda c: (not c.primary, c.summary.casefold(), c.id))


def _row_for(rows: dict[str, SelectedCalendar], calendar: CalendarInfo) -> SelectedCalendar | None:
    # A connection made while Google was unreachable selected the "primary" alias;
    # that row is the primary calendar's.
    row = rows.get(calendar.id)
    if row is None and calendar.primary:
        row = rows.get(PRIMARY_CALENDAR_ID)
    return row


def calendar_choices(
    *, credential: Credential, calendars_info: Iterable[CalendarInfo]
) -> list[CalendarChoice]:
    """``calendars_info`` (in order), each marked selected when it is mirrored now."""
    rows = {row.calendar_id: row for row in credential.selected_calendars.all()}
    choices = []
    for calendar in calendars_info:
        row = _row_for(rows, calendar)
        choices.append(CalendarChoice(calendar=calendar, selected=bool(row and row.enabled)))
    return choices


def select_calendars(
    *,
    credential: Credential,
    calendar_ids: Iterable[str],
    calendars_info: Iterable[CalendarInfo],
) -> SelectionChange:
    """Mirror exactly ``calendar_ids`` among ``calendars_info`` (the account's calendarList).

    Selected calendars get an enabled ``SelectedCalendar`` (created with the
    calendar's time zone, or re-enabled); the other listed calendars are disabled,
    their rows kept. Calendars missing from ``calendars_info`` are left alone.
    With webhooks on, a newly selected calendar gets a push channel and a
    deselected one's channels are stopped; a Google failure there is logged and
    does not undo the selection.

    Raises ``ValueError`` for an id that is not in ``calendars_info``; nothing is
    changed then.
    """
    listed = {calendar.id: calendar for calendar in calendars_info}
    wanted = set(calendar_ids)
    unknown = sorted(wanted - listed.keys())
    if unknown:
        raise ValueError(f"not in the account's calendar list: {', '.join(unknown)}")

    change = SelectionChange()
    opened: list[SelectedCalendar] = []
    dropped: list[SelectedCalendar] = []
    with transaction.atomic():
        rows = {
            row.calendar_id: row
            for row in SelectedCalendar.objects.select_for_update().filter(credential=credential)
        }
        for calendar in listed.values():
            row = _row_for(rows, calendar)
            if calendar.id in wanted:
                if row is None:
                    row = SelectedCalendar.objects.create(
                        credential=credential,
                        calendar_id=calendar.id,
                        time_zone=calendar.time_zone,
                        is_primary=calendar.primary,
                    )
                elif row.enabled:
                    change.kept.append(calendar.id)
                    continue
                else:
                    row.enabled = True
                    row.save(update_fields=["enabled", "updated_at"])
                change.selected.append(calendar.id)
                opened.append(row)
            elif row is not None and row.enabled:
                row.enabled = False
                row.save(update_fields=["enabled", "updated_at"])
                change.deselected.append(calendar.id)
                dropped.append(row)

    if conf.webhooks_enabled:
        _update_channels(change, opened=opened, dropped=dropped)
    return change


def _update_channels(
    change: SelectionChange, *, opened: list[SelectedCalendar], dropped: list[SelectedCalendar]
) -> None:
    now = timezone.now()
    for row in opened:
        if row.channels.filter(stopped_at__isnull=True, expiration__gt=now).exists():
            continue
        try:
            open_channel(row)
        except GoogleError as exc:
            logger.warning("No push channel for %s yet: %s", row.calendar_id, exc)
            change.channel_failures.append(row.calendar_id)
    for row in dropped:
        # Logs what Google refused; such a channel is not renewed and expires on its own.
        stop_calendar_channels(row)
