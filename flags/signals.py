"""Cache flushing for every membership change, including ``clear()`` and deletions.

waffle flushes on ``post_add``/``post_remove`` of users and groups only; a
``clear()`` (from either side) or a team change would leave stale answers for
up to the cache timeout.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from waffle.models import Switch

from flags.memo import memo
from flags.models import Flag, Team, flush_user_memberships, m2m_columns

_PENDING_ATTR = "_flags_pending_flush"


def _flush_flags(flags: Any) -> None:
    for flag in flags:
        flag.flush_now_and_on_commit()


def _flush_users(user_ids: list[Any]) -> None:
    flush_user_memberships(user_ids)
    transaction.on_commit(lambda: flush_user_memberships(user_ids))


def flag_membership_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """Flag.users / Flag.groups / Flag.teams changed, from the flag's side or the other."""
    if not reverse:
        if action.startswith("post_"):
            instance.flush_now_and_on_commit()
        return
    # Reverse side: instance is a user, group or team; find the flags it touches.
    related_name = {
        Flag.users.through: "users",
        Flag.groups.through: "groups",
        Flag.teams.through: "teams",
    }[sender]
    if action == "pre_clear":
        flag_ids = list(
            Flag.objects.filter(**{related_name: instance}).values_list("pk", flat=True)
        )
        setattr(instance, _PENDING_ATTR, flag_ids)
    elif action == "post_clear":
        _flush_flags(Flag.objects.filter(pk__in=getattr(instance, _PENDING_ATTR, [])))
    elif action in ("post_add", "post_remove"):
        _flush_flags(Flag.objects.filter(pk__in=pk_set or []))


def team_membership_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """Team.members changed: forget the affected users' cached teams."""
    if reverse:  # instance is a user
        if action.startswith("post_"):
            _flush_users([instance.pk])
        return
    if action == "pre_clear":
        setattr(instance, _PENDING_ATTR, list(instance.members.values_list("pk", flat=True)))
    elif action == "post_clear":
        _flush_users(getattr(instance, _PENDING_ATTR, []))
    elif action in ("post_add", "post_remove"):
        _flush_users(list(pk_set or []))


def user_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """User.groups changed: forget the affected users' cached groups."""
    if not reverse:  # instance is a user
        if action.startswith("post_"):
            _flush_users([instance.pk])
        return
    if action == "pre_clear":
        user_col, group_col = m2m_columns(get_user_model().groups)
        member_ids = sender._default_manager.filter(**{group_col: instance.pk}).values_list(
            user_col, flat=True
        )
        setattr(instance, _PENDING_ATTR, list(member_ids))
    elif action == "post_clear":
        _flush_users(getattr(instance, _PENDING_ATTR, []))
    elif action in ("post_add", "post_remove"):
        _flush_users(list(pk_set or []))


def team_pre_delete(sender: Any, instance: Team, **kwargs: Any) -> None:
    # Deleting a team removes its rows from both through tables without m2m_changed.
    instance._flags_deleted_memberships = (  # type: ignore[attr-defined]
        list(instance.flags.all()),
        list(instance.members.values_list("pk", flat=True)),
    )


def team_post_delete(sender: Any, instance: Team, **kwargs: Any) -> None:
    flags, member_ids = getattr(instance, "_flags_deleted_memberships", ([], []))
    _flush_flags(flags)
    _flush_users(member_ids)


def connect() -> None:
    for through in (Flag.users.through, Flag.groups.through, Flag.teams.through):
        m2m_changed.connect(
            flag_membership_changed, sender=through, dispatch_uid=f"flags-{through}"
        )
    m2m_changed.connect(
        team_membership_changed, sender=Team.members.through, dispatch_uid="flags-team-members"
    )
    groups = getattr(get_user_model(), "groups", None)
    if groups is not None:
        m2m_changed.connect(user_groups_changed, sender=groups.through, dispatch_uid="flags-groups")
    pre_delete.connect(team_pre_delete, sender=Team, dispatch_uid="flags-team-pre-delete")
    post_delete.connect(team_post_delete, sender=Team, dispatch_uid="flags-team-post-delete")
    # waffle flushes its own cache for a switch; this process's memo must follow at once
    # (the automatic rollback turns the kill switch on and must be obeyed right away).
    post_save.connect(switch_changed, sender=Switch, dispatch_uid="flags-switch-saved")
    post_delete.connect(switch_changed, sender=Switch, dispatch_uid="flags-switch-deleted")


def switch_changed(sender: Any, **kwargs: Any) -> None:
    memo.clear()
    transaction.on_commit(memo.clear)
