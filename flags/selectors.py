"""Reads about flags: who is in a flag right now."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from django.contrib.auth import get_user_model

from flags.conf import conf
from flags.models import Flag, Team, m2m_columns
from flags.rollout import Subject, decide


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


def flag_audience(*, flag: Flag) -> Audience:
    """Count the active users for whom ``flag`` is on, split by why.

    Evaluates the same rule as ``flags.is_enabled`` for every active user, with
    memberships loaded in two queries.
    """
    user_model = get_user_model()
    state = flag.state()
    without_percent = replace(state, percent=None)
    team_members = _memberships_by_user(Team.members, user_is_owner=False)
    groups = getattr(user_model, "groups", None)
    group_members: dict[object, frozenset[int]] = {}
    if groups is not None and state.group_ids:
        group_members = _memberships_by_user(groups, user_is_owner=True)
    users = user_model._default_manager.all()
    if hasattr(user_model, "is_active"):
        users = users.filter(is_active=True)
    total = enabled = by_list = 0
    for user_id in users.values_list("pk", flat=True).iterator():
        total += 1
        subject = Subject(
            user_id=user_id,
            user_group_ids=group_members.get(user_id, frozenset()),
            user_team_ids=team_members.get(user_id, frozenset()),
        )
        if decide(state, subject, bucket_by_team=conf.bucket_by_team):
            enabled += 1
            if decide(without_percent, subject, bucket_by_team=conf.bucket_by_team):
                by_list += 1
    return Audience(
        total_users=total, enabled_users=enabled, by_list=by_list, by_percent=enabled - by_list
    )
