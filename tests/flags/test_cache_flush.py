"""Every change that can alter an answer flushes the cached copy at once.

Each test first asks (so the answer is cached), changes one thing, and asks again.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

import flags
from flags.models import Flag
from tests.factories import FlagFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

NAME = "cache-test"


@pytest.fixture
def flag() -> Flag:
    return FlagFactory(name=NAME)


def on(user: object) -> bool:
    return flags.is_enabled(NAME, user=user)


def test_flag_users_add_remove_clear(flag: Flag) -> None:
    user = UserFactory()
    assert not on(user)
    flag.users.add(user)
    assert on(user)
    flag.users.remove(user)
    assert not on(user)
    flag.users.add(user)
    assert on(user)
    flag.users.clear()
    assert not on(user)


def test_flag_users_changed_from_the_user_side(flag: Flag) -> None:
    user = UserFactory()
    assert not on(user)
    user.flag_set.add(flag)
    assert on(user)
    user.flag_set.clear()
    assert not on(user)


def test_flag_teams_add_remove_clear_from_both_sides(flag: Flag) -> None:
    user = UserFactory()
    team = TeamFactory(members=[user])
    assert not on(user)
    flag.teams.add(team)
    assert on(user)
    flag.teams.remove(team)
    assert not on(user)
    team.flags.add(flag)
    assert on(user)
    team.flags.clear()
    assert not on(user)
    flag.teams.add(team)
    assert on(user)
    flag.teams.clear()
    assert not on(user)


def test_team_members_add_remove_clear_from_both_sides(flag: Flag) -> None:
    user = UserFactory()
    team = TeamFactory()
    flag.teams.add(team)
    assert not on(user)
    team.members.add(user)
    assert on(user)
    team.members.remove(user)
    assert not on(user)
    user.flag_teams.add(team)
    assert on(user)
    user.flag_teams.clear()
    assert not on(user)
    team.members.add(user)
    assert on(user)
    team.members.clear()
    assert not on(user)


def test_flag_groups_and_user_groups(flag: Flag) -> None:
    user = UserFactory()
    group = Group.objects.create(name="g")
    user.groups.add(group)
    assert not on(user)
    flag.groups.add(group)
    assert on(user)
    flag.groups.clear()
    assert not on(user)
    flag.groups.add(group)
    assert on(user)
    user.groups.clear()
    assert not on(user)
    group.user_set.add(user)
    assert on(user)
    group.user_set.clear()
    assert not on(user)


def test_deleting_a_team_flushes_its_flags_and_members(flag: Flag) -> None:
    user = UserFactory()
    team = TeamFactory(members=[user])
    flag.teams.add(team)
    assert on(user)
    team.delete()
    assert not on(user)


def test_saving_the_flag_flushes(flag: Flag) -> None:
    user = UserFactory()
    assert not on(user)
    flag.everyone = True
    flag.save()
    assert on(user)
    flag.everyone = False
    flag.save()
    assert not on(user)


def test_deleting_the_flag_flushes(flag: Flag) -> None:
    user = UserFactory()
    flag.everyone = True
    flag.save()
    assert on(user)
    flag.delete()
    with pytest.raises(flags.UnknownFlag):
        on(user)
