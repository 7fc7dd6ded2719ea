"""flags.memo: answers kept in the process for a moment, cleared by changes made here."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from waffle.models import Switch

import flags
from flags.memo import Memo, memo
from flags.models import Flag, Team
from flags.names import KILL_SWITCH, READ_FLAG
from tests.factories import UserFactory
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db


def test_a_memo_loads_once_until_it_expires_or_is_cleared() -> None:
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    short = Memo(seconds=60)
    assert short.get("k", load) == 1
    assert short.get("k", load) == 1
    short.clear()
    assert short.get("k", load) == 2
    expired = Memo(seconds=0)
    assert expired.get("k", lambda: 1) == 1 and expired.get("k", lambda: 2) == 2


def test_the_hot_path_asks_no_cache_once_memoized(django_assert_num_queries: Any) -> None:
    user = UserFactory()
    assert flags.is_enabled(READ_FLAG, user=user) is False
    assert flags.switch_is_active(KILL_SWITCH) is False
    cache.clear()  # gone from the shared cache: only the memo can answer without a query
    with django_assert_num_queries(0):
        assert flags.is_enabled(READ_FLAG, user=user) is False
        assert flags.is_enabled(READ_FLAG, user_id=user.pk) is False
        assert flags.switch_is_active(KILL_SWITCH) is False


def test_changes_made_in_this_process_are_seen_at_once() -> None:
    user = UserFactory()
    flag = Flag.objects.get(name=READ_FLAG)
    assert not flags.is_enabled(READ_FLAG, user=user)
    team = Team.objects.create(name="Support", slug="support")
    flag.teams.add(team)
    assert not flags.is_enabled(READ_FLAG, user=user)
    team.members.add(user)
    assert flags.is_enabled(READ_FLAG, user=user)
    flag.everyone = False
    flag.save()
    assert not flags.is_enabled(READ_FLAG, user=user)
    assert not flags.switch_is_active(KILL_SWITCH)
    switch, _ = Switch.objects.update_or_create(name=KILL_SWITCH, defaults={"active": True})
    switch.flush()  # waffle's own cache is flushed on commit; the rollback flushes at once
    assert flags.switch_is_active(KILL_SWITCH)


def test_a_change_made_elsewhere_is_seen_once_the_memo_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memo, "seconds", 0.2)
    user = UserFactory()
    assert not flags.is_enabled(READ_FLAG, user=user)
    # another process: the row changes and the shared cache is flushed, not our memo
    Flag.objects.filter(name=READ_FLAG).update(everyone=True)
    cache.clear()
    assert not flags.is_enabled(READ_FLAG, user=user)  # the memo still answers
    wait_for(lambda: flags.is_enabled(READ_FLAG, user=user), timeout=5)
