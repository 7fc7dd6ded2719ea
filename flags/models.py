"""Feature flags on django-waffle, with teams and deterministic percentages.

``Flag`` is the project's ``WAFFLE_FLAG_MODEL``: waffle's admin actions, cache
and ``flag_is_active`` keep working, but every answer comes from
``flags.bucketing.decide`` so it is the same with or without a request.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from waffle.models import AbstractUserFlag
from waffle.utils import get_cache, keyfmt

from flags.bucketing import FlagState, Subject, decide
from flags.conf import conf
from flags.exceptions import UnknownFlag
from flags.memo import memo

logger = logging.getLogger("flags")
_warned_missing: set[str] = set()
_warned_lock = threading.Lock()

FLAG_TEAMS_CACHE_KEY = "flag:%s:teams"
USER_TEAMS_CACHE_KEY = "flags:user:%s:teams"
USER_GROUPS_CACHE_KEY = "flags:user:%s:groups"
_EMPTY = "-"


class Team(models.Model):
    """An organization whose members can be switched on together."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="flag_teams"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Flag(AbstractUserFlag):
    """A waffle flag that also targets teams and buckets users deterministically."""

    percent = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=_(
            "0 to 100, up to 3 decimals: the share of users (by a stable hash of the user "
            "id) for whom the flag is on. Raising it keeps everyone who was in."
        ),
        verbose_name=_("Percent"),
    )
    # waffle gives superusers an automatic yes; a rollout must not.
    superusers = models.BooleanField(
        default=False, help_text=_("Ignored by calcache's flags."), verbose_name=_("Superusers")
    )
    teams = models.ManyToManyField(
        Team, blank=True, related_name="flags", help_text=_("Activate this flag for these teams.")
    )
    rollout_key = models.CharField(
        max_length=100,
        blank=True,
        help_text=_(
            "Flags with the same key put each user in the same percentage bucket "
            "(empty: the flag's name)."
        ),
    )

    class Meta(AbstractUserFlag.Meta):
        verbose_name = _("Flag")
        verbose_name_plural = _("Flags")

    # --- cache -----------------------------------------------------------------
    def get_flush_keys(self, flush_keys: list[str] | None = None) -> list[str]:
        keys: list[str] = super().get_flush_keys(flush_keys)
        keys.append(keyfmt(FLAG_TEAMS_CACHE_KEY, self.name))
        return keys

    def flush(self) -> None:
        memo.clear()
        super().flush()

    def flush_now_and_on_commit(self) -> None:
        """Flush now (read-your-writes) and again after commit (no stale re-cache)."""
        self.flush()
        transaction.on_commit(self.flush)

    @classmethod
    def state_of(cls, name: str) -> FlagState | None:
        """The named flag's state (None when no row has that name), from this process's
        memo, else waffle's cache."""

        def load() -> FlagState | None:
            flag = cls.get(name)
            return flag.state() if flag.pk else None

        return memo.get(("flag", name), load)

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        self.flush()

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        result: tuple[int, dict[str, int]] = super().delete(*args, **kwargs)
        self.flush()
        return result

    def _get_team_ids(self) -> frozenset[int]:
        cache = get_cache()
        key = keyfmt(FLAG_TEAMS_CACHE_KEY, self.name)
        cached = cache.get(key)
        if cached == _EMPTY:
            return frozenset()
        if cached:
            return frozenset(cached)
        team_ids = frozenset(self.teams.values_list("pk", flat=True))
        cache.add(key, set(team_ids) or _EMPTY)
        return team_ids

    # --- decisions --------------------------------------------------------------
    @property
    def effective_rollout_key(self) -> str:
        return self.rollout_key or self.name

    def state(self) -> FlagState:
        """The flag's settings and memberships, from waffle's cache where possible."""
        return FlagState(
            rollout_key=self.effective_rollout_key,
            everyone=self.everyone,
            percent=self.percent,
            user_ids=frozenset(self._get_user_ids()),
            group_ids=frozenset(self._get_group_ids()),
            team_ids=self._get_team_ids(),
        )

    def is_enabled_for(
        self, *, user: Any = None, team: Team | None = None, user_id: Any = None
    ) -> bool:
        """Whether the flag is on for ``user`` (any user model instance, or an existing
        user's ``user_id``) and/or ``team``."""
        return decide_for(self.state(), user=user, team=team, user_id=user_id)

    def is_active(self, request: HttpRequest, read_only: bool = False) -> bool | None:
        """waffle's entry point (template tags, decorators): same answer as ``is_enabled``."""
        if not self.pk:
            return self.missing_flag_answer(self.name)
        return self.is_enabled_for(user=getattr(request, "user", None))

    @classmethod
    def missing_flag_answer(cls, name: str) -> bool:
        """The answer for a flag name with no row: ``UnknownFlag`` when ``FLAGS_STRICT``
        (tests, DEBUG), else off, with one warning per name and process."""
        if conf.strict:
            known = sorted(cls.objects.values_list("name", flat=True))
            raise UnknownFlag(
                f"Unknown flag {name!r}: no flags.Flag row has that name "
                f"(known: {', '.join(known)}). Create it in a data migration or the admin."
            )
        with _warned_lock:
            first = name not in _warned_missing
            _warned_missing.add(name)
        if first:
            logger.warning("Unknown flag %r: treated as off. Create it in the admin.", name)
        return False

    def is_active_for_user(self, user: Any) -> bool | None:
        return self.is_enabled_for(user=user)


def decide_for(
    state: FlagState, *, user: Any = None, team: Team | None = None, user_id: Any = None
) -> bool:
    """The flag rule for ``user`` (an instance; an anonymous one counts as nobody) or
    ``user_id``, and/or ``team``; memberships from this process's memo or the cache."""
    if user is not None:
        user_id = getattr(user, "pk", None)
        if user_id is not None and not getattr(user, "is_authenticated", True):
            user_id = None
    needs_memberships = state.everyone is None and user_id is not None
    subject = Subject(
        user_id=user_id,
        user_group_ids=(
            memo.get(("groups", user_id), lambda: user_group_ids(user_id))
            if needs_memberships and state.group_ids
            else frozenset()
        ),
        user_team_ids=(
            memo.get(("teams", user_id), lambda: user_team_ids(user_id))
            if needs_memberships
            else frozenset()
        ),
        team_id=team.pk if team is not None else None,
    )
    return decide(state, subject, bucket_by_team=conf.bucket_by_team)


def _cached_ids(key_template: str, user_id: object, load: Any) -> frozenset[int]:
    cache = get_cache()
    key = keyfmt(key_template, str(user_id))
    cached = cache.get(key)
    if cached == _EMPTY:
        return frozenset()
    if cached:
        return frozenset(cached)
    ids = frozenset(load())
    cache.add(key, set(ids) or _EMPTY)
    return ids


def m2m_columns(descriptor: Any) -> tuple[str, str]:
    """The through table's (owner, member) foreign-key attnames of an M2M descriptor,
    e.g. ``("team_id", "user_id")`` for ``Team.members``, whatever the user model."""
    field = descriptor.field
    return f"{field.m2m_field_name()}_id", f"{field.m2m_reverse_field_name()}_id"


def user_team_ids(user_id: object) -> frozenset[int]:
    """Ids of the teams ``user_id`` belongs to (cached, flushed on membership changes)."""
    team_col, user_col = m2m_columns(Team.members)
    return _cached_ids(
        USER_TEAMS_CACHE_KEY,
        user_id,
        lambda: Team.members.through._default_manager.filter(**{user_col: user_id}).values_list(
            team_col, flat=True
        ),
    )


def user_group_ids(user_id: object) -> frozenset[int]:
    """Ids of the auth groups ``user_id`` belongs to (cached, flushed on membership changes)."""
    from django.contrib.auth import get_user_model

    groups = getattr(get_user_model(), "groups", None)
    if groups is None:  # a custom user model without PermissionsMixin
        return frozenset()
    user_col, group_col = m2m_columns(groups)
    return _cached_ids(
        USER_GROUPS_CACHE_KEY,
        user_id,
        lambda: groups.through._default_manager.filter(**{user_col: user_id}).values_list(
            group_col, flat=True
        ),
    )


def flush_user_memberships(user_ids: Any) -> None:
    """Forget the cached team and group memberships of these users."""
    memo.clear()
    keys = [
        keyfmt(template, str(user_id))
        for user_id in user_ids
        for template in (USER_TEAMS_CACHE_KEY, USER_GROUPS_CACHE_KEY)
    ]
    if keys:
        get_cache().delete_many(keys)
