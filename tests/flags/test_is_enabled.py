"""flags.is_enabled against the database: determinism, monotonicity, teams, caches."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from django.test import RequestFactory, override_settings

import flags
from flags import models as flag_models
from flags.bucketing import bucket
from flags.models import Flag
from flags.names import KILL_SWITCH, READ_FLAG, WRITE_FLAG
from tests.factories import FlagFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

NAME = "rollout-test"


def enabled_ids(users: list[Any], name: str = NAME) -> set[int]:
    return {u.pk for u in users if flags.is_enabled(name, user=u)}


def set_percent(flag: Flag, percent: str) -> None:
    flag.percent = Decimal(percent)
    flag.save()


def test_same_answer_with_and_without_request() -> None:
    flag = FlagFactory(name=NAME, percent=Decimal(50))
    users = UserFactory.create_batch(200)
    factory = RequestFactory()
    for user in users:
        request = factory.get("/")
        request.user = user
        via_request = flags.is_enabled(NAME, request=request)
        assert via_request == flags.is_enabled(NAME, user=user)
        # waffle's own entry point (template tags, decorators) agrees too.
        assert flag.is_active(request) == via_request
    # and the answer is the documented hash, not chance
    expected = {u.pk for u in users if bucket(NAME, f"user:{u.pk}") < 50_000}
    assert enabled_ids(users) == expected


def test_raising_percent_keeps_everyone_who_was_in() -> None:
    flag = FlagFactory(name=NAME, percent=Decimal(25))
    users = UserFactory.create_batch(400)
    at_25 = enabled_ids(users)
    set_percent(flag, "50")
    at_50 = enabled_ids(users)
    set_percent(flag, "100")
    at_100 = enabled_ids(users)
    assert at_25 <= at_50 <= at_100
    assert len(at_25) < len(at_50) < len(at_100) == len(users)


def test_zero_and_none_percent_are_off_and_100_is_everyone() -> None:
    flag = FlagFactory(name=NAME, percent=Decimal(0))
    users = UserFactory.create_batch(50)
    assert enabled_ids(users) == set()
    flag.percent = None
    flag.save()
    assert enabled_ids(users) == set()
    set_percent(flag, "100")
    assert enabled_ids(users) == {u.pk for u in users}


def test_kill_switch_beats_users_groups_teams_and_percent() -> None:
    user = UserFactory()
    group = Group.objects.create(name="staff-testers")
    user.groups.add(group)
    team = TeamFactory(members=[user])
    flag = FlagFactory(name=NAME, percent=Decimal(100))
    flag.users.add(user)
    flag.groups.add(group)
    flag.teams.add(team)
    assert flags.is_enabled(NAME, user=user)
    flag.everyone = False
    flag.save()
    assert not flags.is_enabled(NAME, user=user)
    assert not flags.is_enabled(NAME, team=team)


def test_everyone_true_turns_on_anonymous_and_users() -> None:
    FlagFactory(name=NAME, everyone=True)
    assert flags.is_enabled(NAME, user=AnonymousUser())
    assert flags.is_enabled(NAME, user=UserFactory())
    assert flags.is_enabled(NAME)


def test_team_membership_turns_flag_on_for_members_only() -> None:
    member, outsider = UserFactory(), UserFactory()
    team = TeamFactory(members=[member])
    flag = FlagFactory(name=NAME)
    flag.teams.add(team)
    assert flags.is_enabled(NAME, user=member)
    assert not flags.is_enabled(NAME, user=outsider)
    assert flags.is_enabled(NAME, team=team)
    assert flags.is_enabled(NAME, user=outsider, team=team)


def test_group_membership_turns_flag_on() -> None:
    user = UserFactory()
    group = Group.objects.create(name="beta")
    flag = FlagFactory(name=NAME)
    flag.groups.add(group)
    assert not flags.is_enabled(NAME, user=user)
    user.groups.add(group)
    assert flags.is_enabled(NAME, user=user)


def test_superusers_get_no_automatic_yes() -> None:
    FlagFactory(name=NAME)
    admin = UserFactory(is_superuser=True, is_staff=True)
    assert not flags.is_enabled(NAME, user=admin)
    request = RequestFactory().get("/")
    request.user = admin
    assert not Flag.get(NAME).is_active(request)


def test_anonymous_user_is_never_in_the_percentage() -> None:
    FlagFactory(name=NAME, percent=Decimal(100))
    assert not flags.is_enabled(NAME, user=AnonymousUser())


@override_settings(FLAGS_BUCKET_BY_TEAM=True)
def test_bucket_by_team_flips_a_whole_team_together() -> None:
    flag = FlagFactory(name=NAME, percent=Decimal(0))
    teams = [TeamFactory(members=UserFactory.create_batch(5)) for _ in range(40)]
    set_percent(flag, "50")
    on_teams = 0
    for team in teams:
        answers = {flags.is_enabled(NAME, user=member) for member in team.members.all()}
        assert len(answers) == 1, "members of one team must get one answer"
        assert answers.pop() == flags.is_enabled(NAME, team=team)
        on_teams += flags.is_enabled(NAME, team=team)
    assert 0 < on_teams < len(teams)


def test_read_and_write_flags_share_buckets() -> None:
    # The shipped flags (data migration) share a rollout key: every reader writes.
    read = Flag.objects.get(name=READ_FLAG)
    write = Flag.objects.get(name=WRITE_FLAG)
    read.percent, write.percent = Decimal(25), Decimal(50)
    read.save()
    write.save()
    users = UserFactory.create_batch(300)
    readers = enabled_ids(users, READ_FLAG)
    writers = enabled_ids(users, WRITE_FLAG)
    assert readers and readers <= writers and len(writers) > len(readers)


def test_unknown_flag_raises_in_tests() -> None:
    with pytest.raises(flags.UnknownFlag, match="no-such-flag"):
        flags.is_enabled("no-such-flag", user=UserFactory())


@override_settings(FLAGS_STRICT=False)
def test_unknown_flag_is_off_in_production_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flag_models._warned_missing.discard("no-such-flag")
    with caplog.at_level(logging.WARNING, logger="flags"):
        assert flags.is_enabled("no-such-flag", user=UserFactory()) is False
        assert flags.is_enabled("no-such-flag") is False
    warnings = [r for r in caplog.records if "no-such-flag" in r.getMessage()]
    assert len(warnings) == 1


def test_shipped_flags_exist_and_are_off() -> None:
    user = UserFactory()
    for name in (READ_FLAG, WRITE_FLAG):
        flag = Flag.objects.get(name=name)
        assert flag.everyone is None and flag.percent is None
        assert not flags.is_enabled(name, user=user)
    from waffle import switch_is_active

    assert switch_is_active(KILL_SWITCH) is False
