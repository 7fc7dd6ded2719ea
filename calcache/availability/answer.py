"""``get_availability``: the one place that decides where an availability answer comes from,
calendar by calendar.

For each enabled selected calendar of each user asked about:

1. SQL, when ``calendar-cache-sql`` is on for the user (or their team), the kill switch
   ``calendar-cache-sql-killswitch`` is off and the calendar is covered for the window
   (``calcache.availability.sql``); the busy rows and every calendar's coverage come
   from one statement for all the users;
2. else the legacy JSON cache, when enabled and a fresh blob answers that calendar;
3. else Google's freeBusy, live: one call per credential for exactly the calendars
   left, one attempt within ``CALCACHE_LIVE_TIMEOUT``, within each user's budget of
   ``CALCACHE_LIVE_CALLS_PER_MINUTE`` (filling the JSON cache).

An answer's ``source`` is the one source that answered, or ``"mixed"``. An error in the
SQL read falls through to the other sources and is counted; it is never shown to the
user. Every answer's source and latency are aggregated per minute
(``calcache.availability.stats``); a sample of answers is handed to the background
runner, which compares it with the other source (``calcache.rollout.shadow``) outside
the request (``CALCACHE_SHADOW_SAMPLE_RATE``). docs/rollout.md explains the stages.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction

import flags
from calcache.availability import budget, json_cache
from calcache.availability.live import fetch_calendars
from calcache.availability.sql import UserRead, read_on_read_database, user_ids_of
from calcache.availability.stats import stats
from calcache.background.runners import get_runner
from calcache.conf import conf
from calcache.exceptions import LiveBudgetExceeded
from calcache.intervals import Interval, merge_intervals
from calcache.models import Credential
from calcache.rollout import shadow
from flags.names import KILL_SWITCH, READ_FLAG

logger = logging.getLogger("calcache.availability")

SQL, JSON, LIVE, MIXED = "sql", "json", "live", "mixed"
# No calendar product needs windows outside these; they are refused before any work.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Availability:
    """The busy time of a user over a window, and where the answer came from.

    ``source``: ``"sql"``, ``"json"``, ``"live"``, or ``"mixed"`` when calendars were
    answered from more than one; ``calendar_sources``: each enabled selected calendar's
    id -> the source that answered for it.
    """

    busy: list[Interval]
    source: str
    calendar_sources: dict[str, str] = field(default_factory=dict)


def sql_read_allowed(user: Any) -> bool:
    """The read flag is on for the user (an object or an id) and the kill switch is off."""
    if flags.switch_is_active(KILL_SWITCH):
        return False
    if hasattr(user, "pk"):
        return flags.is_enabled(READ_FLAG, user=user)
    return flags.is_enabled(READ_FLAG, user_id=user)


def check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC; ``ValueError`` for naive or reversed times and for windows
    outside 1970-2100."""
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime")
    try:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
    except OverflowError:
        raise ValueError("the window is outside the years 1970 to 2100") from None
    if end <= start:
        raise ValueError("end must be after start")
    if start < EARLIEST or end > LATEST:
        raise ValueError("the window is outside the years 1970 to 2100")
    return start, end


def get_availability(*, user: Any, start: datetime, end: datetime) -> Availability:
    """The user's busy time over ``[start, end)``, calendar by calendar from the source
    the rollout allows. Raises ``ValueError`` for a bad window, ``GoogleError`` when a
    live read fails and ``LiveBudgetExceeded`` when the user's live reads are spent."""
    user_id = getattr(user, "pk", user)
    return get_availability_for_users(users=[user], start=start, end=end)[user_id]


def get_availability_for_users(
    *, users: Iterable[Any], start: datetime, end: datetime
) -> dict[Any, Availability]:
    """``get_availability`` for many users (objects or ids, each once), keyed by user id.

    The SQL part is one statement for all of them; Google is asked only about calendars
    SQL and the JSON cache cannot answer, at most one freeBusy call per credential.
    """
    start, end = check_window(start, end)
    given = list(users)
    user_ids = user_ids_of(given)
    if not user_ids:
        return {}
    objects = {getattr(u, "pk", u): u for u in given if hasattr(u, "pk")}
    began = time.perf_counter()
    readers = [user_id for user_id in user_ids if sql_read_allowed(objects.get(user_id, user_id))]
    reads, read_by_sql = _read_sql(user_ids, readers, start, end, began)
    sql_users = set(read_by_sql)
    plans = {
        user_id: _Plan.of(reads[user_id], reads_sql=user_id in sql_users) for user_id in user_ids
    }
    _answer_from_json(plans, start, end)
    _answer_live(plans, start, end)
    seconds = (time.perf_counter() - began) / len(user_ids)
    answers = {}
    for user_id, plan in plans.items():
        answer = plan.availability(start, end, reads_sql=user_id in sql_users)
        stats.record(answer.source, seconds)
        if shadow.sampled(user_id=user_id):
            sample = shadow.ShadowSample(
                user_id, start, end, answer.source, answer.busy, seconds * 1000
            )
            _hand_over(sample)
        answers[user_id] = answer
    return answers


@dataclass
class _Plan:
    """One user's answer in the making: which calendars are answered, and by what."""

    rows: list[Interval] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    # calendar id -> the (credential id, calendar id) that will answer for it
    open: dict[str, tuple[int, str]] = field(default_factory=dict)
    # credential id -> its enabled calendars (the JSON cache's whole-credential key)
    selected: dict[int, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, read: UserRead, *, reads_sql: bool) -> _Plan:
        plan = cls(rows=list(read.rows) if reads_sql else [])
        for calendar in read.calendars:
            plan.selected.setdefault(calendar.credential_id, []).append(calendar.calendar_id)
            if reads_sql and calendar.covered:
                plan.sources[calendar.calendar_id] = SQL
        # A calendar selected through two accounts is answered once: by a covered copy,
        # else through a valid credential.
        for calendar in sorted(
            read.calendars, key=lambda c: (c.credential_invalid, c.credential_id)
        ):
            if calendar.calendar_id not in plan.sources:
                plan.open.setdefault(
                    calendar.calendar_id, (calendar.credential_id, calendar.calendar_id)
                )
        return plan

    def answered(self, calendar_id: str, source: str, busy: list[Interval]) -> None:
        self.sources[calendar_id] = source
        self.rows.extend(busy)
        del self.open[calendar_id]

    def open_by_credential(self) -> dict[int, list[str]]:
        grouped: defaultdict[int, list[str]] = defaultdict(list)
        for credential_id, calendar_id in self.open.values():
            grouped[credential_id].append(calendar_id)
        return dict(grouped)

    def availability(self, start: datetime, end: datetime, *, reads_sql: bool) -> Availability:
        used = set(self.sources.values())
        if len(used) > 1:
            source = MIXED
        elif used:
            source = used.pop()
        else:  # no calendars: nothing to ask anyone
            source = SQL if reads_sql else LIVE
        busy = merge_intervals(self.rows, start=start, end=end)
        return Availability(busy=busy, source=source, calendar_sources=dict(self.sources))


def _hand_over(sample: shadow.ShadowSample) -> None:
    try:
        get_runner().submit_comparison(sample)
    except Exception:  # a comparison must never break an answer
        logger.exception("Could not hand a shadow comparison to the background runner")


def _read_sql(
    user_ids: list[Any], readers: list[Any], start: datetime, end: datetime, began: float
) -> tuple[dict[Any, UserRead], list[Any]]:
    """The SQL read and the users it answers for (none, when it failed)."""
    if readers:
        # Inside a transaction a savepoint, so a failed read cannot poison it; in
        # autocommit a failed read leaves nothing to undo.
        guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
        try:
            with guard:
                read = read_on_read_database(
                    user_ids=user_ids, start=start, end=end, readers=readers
                )
                return read, readers
        except Exception:
            logger.exception("SQL availability read failed; falling back")
            stats.record(SQL, time.perf_counter() - began, error=True)
    # The calendars alone, for the other sources.
    return read_on_read_database(user_ids=user_ids, start=start, end=end, readers=()), []


def _answer_from_json(plans: dict[Any, _Plan], start: datetime, end: datetime) -> None:
    if not conf.json_cache_enabled:
        return
    wanted: dict[int, list[str]] = {}
    selected: dict[int, list[str]] = {}
    for plan in plans.values():
        for credential_id, calendar_ids in plan.open_by_credential().items():
            wanted.setdefault(credential_id, []).extend(calendar_ids)
            selected[credential_id] = plan.selected[credential_id]
    if not wanted:
        return
    found = json_cache.cached_calendars(wanted=wanted, selected=selected, start=start, end=end)
    for plan in plans.values():
        for calendar_id, key in list(plan.open.items()):
            if key in found:
                plan.answered(calendar_id, JSON, found[key])


def _answer_live(plans: dict[Any, _Plan], start: datetime, end: datetime) -> None:
    calls = {user_id: plan.open_by_credential() for user_id, plan in plans.items()}
    calls = {user_id: by_credential for user_id, by_credential in calls.items() if by_credential}
    if not calls:
        return
    wait = budget.spend({user_id: len(by_credential) for user_id, by_credential in calls.items()})
    if wait > 0:
        raise LiveBudgetExceeded(
            "Live calendar reads for this minute are spent; try again shortly.",
            status=429,
            reason="liveBudgetExceeded",
            retry_after=wait,
        )
    credentials = Credential.objects.in_bulk(
        [credential_id for by_credential in calls.values() for credential_id in by_credential]
    )
    keep = json_cache.store_blob if conf.json_cache_enabled else None
    for user_id, by_credential in calls.items():
        plan = plans[user_id]
        for credential_id, calendar_ids in by_credential.items():
            began = time.perf_counter()
            try:
                busy = fetch_calendars(
                    credential=credentials[credential_id],
                    calendar_ids=calendar_ids,
                    start=start,
                    end=end,
                    keep=keep,
                )
            except Exception:
                stats.record(LIVE, time.perf_counter() - began, error=True)
                raise
            for calendar_id in calendar_ids:
                plan.answered(calendar_id, LIVE, busy[calendar_id])
