"""Deterministic rollout decisions, independent of requests, cookies and processes.

A subject's bucket is a stable hash of (rollout key, subject) into 0..99,999; a
flag at ``percent`` P is on for buckets below ``P * 1000``. So the same user gets
the same answer in a request, a management command and a worker, and raising
the percentage only ever adds users.
"""

from __future__ import annotations

import hashlib
from collections.abc import Set
from dataclasses import dataclass, field
from decimal import Decimal

PERCENT_SCALE = 1000  # three decimals of a percent
BUCKETS = 100 * PERCENT_SCALE


def bucket(rollout_key: str, subject: str) -> int:
    """The subject's bucket in ``0 .. BUCKETS - 1`` for this rollout key."""
    digest = hashlib.sha256(f"{rollout_key}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def percent_threshold(percent: Decimal | None) -> int:
    """Buckets below this number are in; 0 for no percentage, ``BUCKETS`` for 100%."""
    if not percent or percent <= 0:
        return 0
    return min(BUCKETS, int(Decimal(percent) * PERCENT_SCALE))


@dataclass(frozen=True)
class FlagState:
    """What a decision needs of a flag, loaded once (and cached) per flag."""

    rollout_key: str
    everyone: bool | None
    percent: Decimal | None
    user_ids: Set[object] = field(default_factory=frozenset)
    group_ids: Set[int] = field(default_factory=frozenset)
    team_ids: Set[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Subject:
    """Who is asking: a user with their groups and teams, and/or an explicit team."""

    user_id: object | None = None
    user_group_ids: Set[int] = field(default_factory=frozenset)
    user_team_ids: Set[int] = field(default_factory=frozenset)
    team_id: int | None = None

    def bucket_subject(self, *, bucket_by_team: bool) -> str | None:
        """The string hashed for the percentage, or None when nobody is asking."""
        if self.team_id is not None and (self.user_id is None or bucket_by_team):
            return f"team:{self.team_id}"
        if self.user_id is None:
            return None
        if bucket_by_team and self.user_team_ids:
            return f"team:{min(self.user_team_ids)}"
        return f"user:{self.user_id}"


def decide(flag: FlagState, subject: Subject, *, bucket_by_team: bool = False) -> bool:
    """The one rule: kill switch, everyone, users, groups, teams, then percentage."""
    if flag.everyone is not None:
        # False is the kill switch; it beats every list and the percentage.
        return flag.everyone
    if subject.user_id is not None and subject.user_id in flag.user_ids:
        return True
    if flag.group_ids & subject.user_group_ids:
        return True
    if flag.team_ids & subject.user_team_ids:
        return True
    if subject.team_id is not None and subject.team_id in flag.team_ids:
        return True
    who = subject.bucket_subject(bucket_by_team=bucket_by_team)
    if who is None:
        return False
    return bucket(flag.rollout_key, who) < percent_threshold(flag.percent)
