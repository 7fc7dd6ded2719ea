"""The staged migration from the JSON cache to SQL: the stage the flags say, flag changes,
and retirement of the JSON cache (docs/rollout.md).

Stages, derived from the flags:
1. infrastructure: nobody writes SQL;
2. dual write: ``calendar-cache-sql-write`` reaches someone, nobody reads SQL;
3. dual read: ``calendar-cache-sql`` reaches some users;
4. full: ``calendar-cache-sql`` is on for everyone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from waffle import switch_is_active
from waffle.models import Switch

from calcache import signals
from calcache.conf import conf
from calcache.exceptions import RolloutError
from calcache.models import (
    AvailabilityStat,
    CalendarCache,
    CalendarSyncToken,
    RolloutEvent,
    SelectedCalendar,
)
from calcache.rollout.shadow import mismatch_rate
from flags.models import Flag, Team
from flags.names import KILL_SWITCH, READ_FLAG, WRITE_FLAG
from flags.selectors import flag_audience

logger = logging.getLogger("calcache.rollout")

# Shown on the dashboard and by ``calendar_cache_rollout status``, in the active language.
STAGE_NAMES = {
    1: gettext_lazy("infrastructure"),
    2: gettext_lazy("dual write"),
    3: gettext_lazy("dual read"),
    4: gettext_lazy("full migration"),
}
NEXT_STEPS = {
    1: [
        gettext_lazy("Migrations applied; both flags exist and are off (stage 1)."),
        gettext_lazy("Next: `calendar_cache_rollout set-write --team <internal team>` (stage 2)."),
    ],
    2: [
        gettext_lazy(
            "Watch sync health: `sync_calendars` summaries, failed calendars, coverage below."
        ),
        gettext_lazy(
            "Monitor data consistency: the mismatch rate of shadow comparisons should stay ~0%."
        ),
        gettext_lazy(
            "Validate performance: the SQL/JSON latency ratio (below 1 means SQL is faster)."
        ),
        gettext_lazy(
            "Then widen writes to 10% (`set-write --percent 10`) and, once coverage is high, "
            "read for the internal team (`set-read --team ...`, stage 3)."
        ),
    ],
    3: [
        gettext_lazy(
            "Compare query performance vs the JSON cache (latency ratio) and the mismatch rate."
        ),
        gettext_lazy("Test edge cases and error handling: `compare_calendar_caches --live`."),
        gettext_lazy("Widen reads gradually (25%); keep writes ahead of reads."),
        gettext_lazy("Then `set-read --everyone` (stage 4)."),
    ],
    4: [
        gettext_lazy("Monitor for 2 weeks (CALCACHE_RETIRE_AFTER_DAYS)."),
        gettext_lazy("Then `retire_json_cache`, and set CALCACHE_JSON_CACHE_ENABLED=False."),
    ],
}


@dataclass
class FlagSummary:
    name: str
    everyone: bool | None
    percent: Decimal | None
    users: int
    teams: list[str]
    groups: int
    enabled_users: int
    total_users: int

    def describe(self) -> str:
        """Who the flag reaches, in words, e.g. ``teams core + 3 user(s) + 10%``."""
        if self.everyone is False:
            return _("off for everyone (kill switch)")
        if self.everyone is True:
            return _("on for everyone")
        parts = []
        if self.teams:
            parts.append(_("teams %(teams)s") % {"teams": ", ".join(self.teams)})
        if self.users:
            parts.append(_("%(count)s user(s)") % {"count": self.users})
        if self.groups:
            parts.append(_("%(count)s group(s)") % {"count": self.groups})
        if self.percent:
            parts.append(f"{self.percent}%")
        return " + ".join(parts) if parts else _("nobody")


@dataclass
class RolloutStatus:
    stage: int
    write: FlagSummary
    read: FlagSummary
    kill_switch: bool
    calendars: int
    covered_calendars: int
    mismatches: int
    comparisons: int
    sql_mean_ms: float | None
    json_mean_ms: float | None
    next_steps: list[str] = field(default_factory=list)

    @property
    def stage_name(self) -> str:
        return str(STAGE_NAMES[self.stage])

    @property
    def coverage(self) -> float:
        return self.covered_calendars / self.calendars if self.calendars else 0.0

    @property
    def mismatch_percent(self) -> float:
        return 100.0 * self.mismatches / self.comparisons if self.comparisons else 0.0

    @property
    def latency_ratio(self) -> float | None:
        if self.sql_mean_ms is None or not self.json_mean_ms:
            return None
        return self.sql_mean_ms / self.json_mean_ms


def _summary(flag: Flag) -> FlagSummary:
    audience = flag_audience(flag=flag)
    return FlagSummary(
        name=flag.name,
        everyone=flag.everyone,
        percent=flag.percent,
        users=flag.users.count(),
        teams=list(flag.teams.values_list("slug", flat=True)),
        groups=flag.groups.count(),
        enabled_users=audience.enabled_users,
        total_users=audience.total_users,
    )


def _reaches_anyone(summary: FlagSummary) -> bool:
    if summary.everyone is not None:
        return summary.everyone
    return bool(summary.users or summary.teams or summary.groups or summary.percent)


def _mean_ms(source: str, since: datetime) -> float | None:
    totals = AvailabilityStat.objects.filter(source=source, minute__gte=since).aggregate(
        requests=Sum("requests"), total=Sum("total_ms")
    )
    if not totals["requests"]:
        return None
    return float(totals["total"]) / int(totals["requests"])


def calendars_covered(*, now: datetime | None = None) -> tuple[int, int]:
    """(fully synced, all) enabled selected calendars: a window reaching from now to at
    least a day ahead, and no error newer than the last success."""
    now = now or timezone.now()
    calendars = list(
        SelectedCalendar.objects.filter(enabled=True, credential__invalid=False).values_list(
            "credential_id", "calendar_id"
        )
    )
    tokens = {
        (t.credential_id, t.calendar_id): t
        for t in CalendarSyncToken.objects.filter(last_sync_at__isnull=False)
    }
    covered = 0
    for key in calendars:
        token = tokens.get(key)
        if (
            token is not None
            and token.window_start is not None
            and token.window_end is not None
            and token.last_sync_at is not None
            and token.window_start <= now
            and token.window_end >= now + timedelta(days=1)
            and (token.last_error_at is None or token.last_error_at < token.last_sync_at)
        ):
            covered += 1
    return covered, len(calendars)


def rollout_status(*, now: datetime | None = None) -> RolloutStatus:
    """The stage as the flags say, who is in each flag, and the figures to watch."""
    now = now or timezone.now()
    write = _summary(Flag.objects.get(name=WRITE_FLAG))
    read = _summary(Flag.objects.get(name=READ_FLAG))
    if read.everyone is True or (read.everyone is None and read.percent == 100):
        stage = 4
    elif _reaches_anyone(read):
        stage = 3
    elif _reaches_anyone(write):
        stage = 2
    else:
        stage = 1
    covered, calendars = calendars_covered(now=now)
    mismatches, comparisons = mismatch_rate(samples=conf.rollback_min_samples)
    since = now - timedelta(days=1)
    return RolloutStatus(
        stage=stage,
        write=write,
        read=read,
        kill_switch=switch_is_active(KILL_SWITCH),
        calendars=calendars,
        covered_calendars=covered,
        mismatches=mismatches,
        comparisons=comparisons,
        sql_mean_ms=_mean_ms("sql", since),
        json_mean_ms=_mean_ms("json", since),
        next_steps=[str(step) for step in NEXT_STEPS[stage]],
    )


def parse_percent(value: Any) -> Decimal:
    """A percentage as the flag admin accepts it: 0 to 100, at most three decimals."""
    try:
        percent = Decimal(str(value))
    except InvalidOperation:
        raise RolloutError(f"{value!r} is not a number.") from None
    field = Flag._meta.get_field("percent")
    try:
        field.clean(percent, None)
    except ValidationError as exc:
        raise RolloutError(" ".join(exc.messages)) from None
    return percent


def set_flag(
    *,
    name: str,
    team: str | None = None,
    percent: Any = None,
    everyone: bool = False,
    off: bool = False,
    actor: Any = None,
) -> RolloutEvent:
    """Change one rollout flag exactly one way and record it as a ``RolloutEvent``.

    ``team`` adds a team; ``percent`` sets the share; ``everyone`` turns it on for all;
    ``off`` turns it off for everyone (the lists stay, for turning it back on).
    """
    if name not in (READ_FLAG, WRITE_FLAG):
        raise RolloutError(f"{name!r} is not a rollout flag.")
    if sum((team is not None, percent is not None, everyone, off)) != 1:
        raise RolloutError("Give exactly one of --team, --percent, --everyone, --off.")
    with transaction.atomic():
        flag = Flag.objects.select_for_update().get(name=name)
        before = flag_state(flag)
        if team is not None:
            found = Team.objects.filter(slug=team).first()
            if found is None:
                raise RolloutError(f"Unknown team {team!r} (give its slug).")
            flag.teams.add(found)
            if flag.everyone is False:
                flag.everyone = None
            change = f"added team {team}"
        elif percent is not None:
            flag.percent = parse_percent(percent)
            if flag.everyone is False:
                flag.everyone = None
            change = f"percent {flag.percent}"
        elif everyone:
            flag.everyone = True
            change = "everyone"
        else:
            flag.everyone = False
            change = "off for everyone"
        flag.save()
        event = record_flag_change(flag=flag, before=before, change=change, actor=actor)
    return event


ROLLOUT_NAMES = (READ_FLAG, WRITE_FLAG, KILL_SWITCH)


def flag_state(flag: Flag) -> dict[str, Any]:
    """What decides who is in ``flag``, as a ``RolloutEvent`` records it before and after a
    change: ``everyone``, ``percent``, and the teams' slugs, group names and user ids."""
    return {
        "everyone": flag.everyone,
        "percent": str(flag.percent),
        "teams": sorted(flag.teams.values_list("slug", flat=True)),
        "groups": sorted(flag.groups.values_list("name", flat=True)),
        "users": sorted(flag.users.values_list("pk", flat=True)),
    }


def describe_flag_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """A ``RolloutEvent`` reason for the difference between two ``flag_state`` results,
    e.g. ``"everyone None -> True; added team core"``; empty when nothing changed."""
    parts: list[str] = []
    for key in ("everyone", "percent"):
        if before.get(key) != after.get(key):
            parts.append(f"{key} {before.get(key)} -> {after.get(key)}")
    for key, noun in (("teams", "team"), ("groups", "group"), ("users", "user")):
        old, new = set(before.get(key, [])), set(after.get(key, []))
        parts += [f"added {noun} {value}" for value in sorted(new - old)]
        parts += [f"removed {noun} {value}" for value in sorted(old - new)]
    return "; ".join(parts)


def _record(*, action: str, reason: str, figures: dict[str, Any], actor: Any) -> RolloutEvent:
    event = RolloutEvent.objects.create(
        action=action,
        reason=reason,
        figures=figures,
        actor=actor if getattr(actor, "pk", None) else None,
    )
    signals.send_on_commit(signals.rollout_changed, sender=RolloutEvent, event=event)
    return event


def record_flag_change(
    *, flag: Flag, before: dict[str, Any], change: str, actor: Any = None
) -> RolloutEvent:
    """Record a change of a rollout flag (the CLI's or the admin's) as a ``RolloutEvent``
    (``before``: ``flag_state`` from before the change) and send
    ``calcache.signals.rollout_changed`` once the transaction commits."""
    return _record(
        action=f"set {flag.name}",
        reason=change,
        figures={"before": before, "after": flag_state(flag)},
        actor=actor,
    )


def record_switch_change(*, switch: Switch, before: bool, actor: Any = None) -> RolloutEvent:
    """Record that ``switch`` (the kill switch) went from ``before`` to its current state,
    as ``record_flag_change`` does for a flag."""
    return _record(
        action=f"set {switch.name}",
        reason="on" if switch.active else "off",
        figures={"before": {"active": before}, "after": {"active": switch.active}},
        actor=actor,
    )


def retire_json_cache(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Stage 4's last step: delete every legacy JSON row, once the read flag has been at
    100% for CALCACHE_RETIRE_AFTER_DAYS with the mismatch rate under the threshold."""
    now = now or timezone.now()
    read = Flag.objects.get(name=READ_FLAG)
    at_full = read.everyone is True or (read.everyone is None and read.percent == 100)
    if not at_full:
        raise RolloutError("calendar-cache-sql is not on for everyone yet (stage 4).")
    days = conf.retire_after_days
    if read.modified > now - timedelta(days=days):
        raise RolloutError(
            f"calendar-cache-sql changed {read.modified:%Y-%m-%d %H:%M}; it must stay at 100% "
            f"for {days} days (CALCACHE_RETIRE_AFTER_DAYS) before the JSON cache goes."
        )
    if switch_is_active(KILL_SWITCH):
        raise RolloutError(f"{KILL_SWITCH} is on: SQL is not being read. Investigate first.")
    mismatches, comparisons = mismatch_rate(samples=conf.rollback_min_samples)
    percent = 100.0 * mismatches / comparisons if comparisons else 0.0
    if percent > conf.rollback_mismatch_percent:
        raise RolloutError(
            f"The mismatch rate is {percent:.2f}% ({mismatches}/{comparisons}), above "
            f"{conf.rollback_mismatch_percent}%."
        )
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(CalendarCache.objects.values_list("pk", flat=True)[:batch_size])
            if not ids:
                break
            deleted += CalendarCache.objects.filter(pk__in=ids).delete()[0]
    RolloutEvent.objects.create(
        action="retire JSON cache",
        reason=f"deleted {deleted} legacy JSON cache rows",
        figures={"deleted": deleted, "mismatch_percent": round(percent, 3)},
    )
    return deleted
