"""flags.selectors: who is in a flag, counted (flag_audience) and in bulk (enabled_user_ids)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

import flags
from flags.bucketing import bucket
from flags.models import Flag
from flags.selectors import Audience, enabled_user_ids, flag_audience
from tests.factories import FlagFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

NAME = "selectors-test"


@pytest.fixture
def people() -> list[Any]:
    """Sixty active users in teams of four."""
    users = UserFactory.create_batch(60)
    for offset in range(0, len(users), 4):
        TeamFactory(members=users[offset : offset + 4])
    return users


def listed_three(flag: Flag, people: list[Any]) -> None:
    """The first person by name, the second by a team of theirs, the third by a group."""
    flag.users.add(people[0])
    flag.teams.add(TeamFactory(members=[people[1]]))
    group = Group.objects.create(name="beta")
    people[2].groups.add(group)
    flag.groups.add(group)


def enabled(people: list[Any]) -> set[Any]:
    return {person.pk for person in people if flags.is_enabled(NAME, user=person)}


def test_flag_audience_counts_by_list_and_by_percent(people: list[Any]) -> None:
    flag = FlagFactory(name=NAME, percent=Decimal(30))
    listed_three(flag, people)
    flag.users.add(UserFactory(is_active=False))  # inactive users are nobody's audience

    audience = flag_audience(flag=flag)

    on = enabled(people)
    by_percent = {p.pk for p in people[3:] if bucket(NAME, f"user:{p.pk}") < 30_000}
    assert on == {p.pk for p in people[:3]} | by_percent
    assert 0 < len(by_percent) < len(people) - 3
    assert audience == Audience(
        total_users=60, enabled_users=len(on), by_list=3, by_percent=len(by_percent)
    )
    assert audience.enabled_share == len(on) / 60


@pytest.mark.parametrize(("everyone", "on"), [(True, 60), (False, 0)])
def test_flag_audience_of_a_flag_on_or_off_for_everyone(
    people: list[Any], everyone: bool, on: int
) -> None:
    flag = FlagFactory(name=NAME, everyone=everyone, percent=Decimal(50))
    listed_three(flag, people)
    audience = flag_audience(flag=flag)
    assert (audience.enabled_users, audience.by_percent) == (on, 0)


def test_25_percent_of_10k_users_is_25_plus_minus_3_points() -> None:
    flag = FlagFactory(name=NAME, percent=Decimal(25))
    User = get_user_model()
    User.objects.bulk_create(User(username=f"bulk{n}") for n in range(10_000))
    audience = flag_audience(flag=flag)
    assert audience.total_users == 10_000
    assert 0.22 <= audience.enabled_share <= 0.28
    assert audience.by_percent == audience.enabled_users
    # the audience count uses the very rule is_enabled answers with
    sample = list(User.objects.order_by("?")[:300])
    assert sum(flags.is_enabled(NAME, user=u) for u in sample) == sum(
        bucket(NAME, f"user:{u.pk}") < 25_000 for u in sample
    )


@pytest.mark.parametrize("bucket_by_team", [False, True], ids=["by-user", "by-team"])
def test_enabled_user_ids_is_is_enabled_for_each_user(
    people: list[Any], settings: Any, bucket_by_team: bool, django_assert_max_num_queries: Any
) -> None:
    settings.FLAGS_BUCKET_BY_TEAM = bucket_by_team
    flag = FlagFactory(name=NAME, percent=Decimal(40))
    listed_three(flag, people)
    ids = [person.pk for person in people]

    with django_assert_max_num_queries(5):  # in bulk: not a query per user
        chosen = enabled_user_ids(flag=flag, user_ids=ids)

    assert chosen == enabled(people)
    assert 3 < len(chosen) < len(people)
    assert enabled_user_ids(flag=flag, user_ids=ids[:10]) == chosen & set(ids[:10])
    assert enabled_user_ids(flag=flag, user_ids=[]) == set()
    flag.everyone = False
    flag.save()
    assert enabled_user_ids(flag=flag, user_ids=ids) == set() == enabled(people)
