"""The pure bucketing rule, without a database."""

from __future__ import annotations

from decimal import Decimal

from flags.bucketing import BUCKETS, FlagState, Subject, bucket, decide, percent_threshold


def state(**kwargs: object) -> FlagState:
    defaults: dict[str, object] = {"rollout_key": "f", "everyone": None, "percent": None}
    defaults.update(kwargs)
    return FlagState(**defaults)  # type: ignore[arg-type]


def test_bucket_is_stable_and_in_range() -> None:
    assert bucket("calendar-cache-sql", "user:42") == bucket("calendar-cache-sql", "user:42")
    values = {bucket("k", f"user:{n}") for n in range(2000)}
    assert all(0 <= v < BUCKETS for v in values)
    assert len(values) > 1900  # spread, not clustered


def test_bucket_depends_on_rollout_key() -> None:
    same = sum(bucket("a", f"user:{n}") == bucket("b", f"user:{n}") for n in range(1000))
    assert same < 10


def test_percent_threshold_scale() -> None:
    assert percent_threshold(None) == 0
    assert percent_threshold(Decimal("0")) == 0
    assert percent_threshold(Decimal("0.001")) == 1
    assert percent_threshold(Decimal("25")) == 25_000
    assert percent_threshold(Decimal("100")) == BUCKETS


def test_kill_switch_beats_every_list() -> None:
    flag = state(everyone=False, percent=Decimal(100), user_ids={1}, team_ids={7}, group_ids={3})
    subject = Subject(user_id=1, user_group_ids=frozenset({3}), user_team_ids=frozenset({7}))
    assert decide(flag, subject) is False
    assert decide(flag, Subject(team_id=7)) is False


def test_everyone_true_is_on_even_for_anonymous() -> None:
    assert decide(state(everyone=True), Subject()) is True


def test_nobody_asking_is_off_unless_everyone() -> None:
    assert decide(state(percent=Decimal(100)), Subject()) is False


def test_lists_then_percent() -> None:
    flag = state(user_ids={1}, group_ids={3}, team_ids={7})
    assert decide(flag, Subject(user_id=1))
    assert decide(flag, Subject(user_id=2, user_group_ids=frozenset({3})))
    assert decide(flag, Subject(user_id=2, user_team_ids=frozenset({7})))
    assert decide(flag, Subject(team_id=7))
    assert not decide(flag, Subject(user_id=2))


def test_bucket_by_team_uses_lowest_team_id() -> None:
    subject = Subject(user_id=5, user_team_ids=frozenset({9, 4}))
    assert subject.bucket_subject(bucket_by_team=True) == "team:4"
    assert subject.bucket_subject(bucket_by_team=False) == "user:5"
    explicit = Subject(user_id=5, user_team_ids=frozenset({9, 4}), team_id=9)
    assert explicit.bucket_subject(bucket_by_team=True) == "team:9"
    assert Subject(team_id=9).bucket_subject(bucket_by_team=False) == "team:9"
