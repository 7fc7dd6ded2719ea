"""Reads about flags: who is in a flag right now."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth import get_user_model

from flags.bucketing import Subject, decide
from flags.conf import conf
from flags.models import Flag, Team, m2m_columns


@dataclass(frozen=True)
class Audience:
    total_users: int
    enabled_users: int
    by_list: int
    by_percent: int

    @property
    def enabled_share(self) -> float:
        return self.enabled_users / self.total_users if self.total_users else 0.0


def _memberships_by_user(descriptor: Any, *, user_is_owner: bool) -> dict[object, frozenset[int]]:
    """user id -> ids of the teams (or groups) they belong to, in one query."""
    owner_col, member_col = m2m_columns(descriptor)
    user_col, other_col = (owner_col, member_col) if user_is_owner else (member_col, owner_col)
    grouped: defaultdict[object, set[int]] = defaultdict(set)
    rows = descriptor.through._default_manager.values_list(user_col, other_col)
    for user_id, other_id in rows.iterator():
        grouped[user_id].add(other_id)
    return {user_id: frozenset(ids) for user_id, ids in grouped.items()}


def _subjects(state_group_ids: Set[int], user_ids: Iterable[object]) -> Iterator[Subject]:
    """A ``Subject`` per user id, with memberships loaded in (at most) two queries."""
    groups = getattr(get_user_model(), "groups", None)
    team_members = _memberships_by_user(Team.members, user_is_owner=False)
    group_members: dict[object, frozenset[int]] = {}
    if groups is not None and state_group_ids:
        group_members = _memberships_by_user(groups, user_is_owner=True)
    for user_id in user_ids:
        yield Subject(
            user_id=user_id,
            user_group_ids=group_members.get(user_id, frozenset()),
            user_team_ids=team_members.get(user_id, frozenset()),
        )


def _active_user_ids() -> Iterator[object]:
    user_model = get_user_model()
    users = user_model._default_manager.all()
    if hasattr(user_model, "is_active"):
        users = users.filter(is_active=True)
    return users.values_list("pk", flat=True).iterator()


def flag_audience(*, flag: Flag) -> Audience:
    """Count the active users for whom ``flag`` is on, split by why.

    Evaluates the same rule as ``flags.is_enabled`` for every active user, with
    memberships loaded in two queries.
    """
    state = flag.state()
    without_percent = replace(state, percent=None)
    total = enabled = by_list = 0
    for subject in _subjects(state.group_ids, _active_user_ids()):
        total += 1
        if decide(state, subject, bucket_by_team=conf.bucket_by_team):
            enabled += 1
            if decide(without_percent, subject, bucket_by_team=conf.bucket_by_team):
                by_list += 1
    return Audience(
        total_users=total, enabled_users=enabled, by_list=by_list, by_percent=enabled - by_list
    )


def enabled_user_ids(*, flag: Flag, user_ids: Iterable[object]) -> set[object]:
    """Which of ``user_ids`` have ``flag`` on (the rule of ``flags.is_enabled``), decided
    in bulk: for background sweeps over many users, without a query per user."""
    state = flag.state()
    return {
        subject.user_id
        for subject in _subjects(state.group_ids, user_ids)
        if decide(state, subject, bucket_by_team=conf.bucket_by_team)
    }
