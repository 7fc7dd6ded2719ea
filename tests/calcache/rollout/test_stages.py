"""The staged migration end to end against the emulator, and its commands."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import CacheComparison, CalendarCache, CalendarEvent, RolloutEvent
from calcache.rollout.dual_write import refresh_calendar
from calcache.rollout.stages import rollout_status
from calcache.services import get_availability
from flags.models import Flag
from flags.names import READ_FLAG, WRITE_FLAG
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

ACCOUNTS = [
    ("ada@example.com", "Europe/London"),
    ("grace@example.com", "America/Los_Angeles"),
    ("katherine@example.com", "Asia/Tokyo"),
    ("linus@example.com", "Europe/Helsinki"),
]


@pytest.fixture(autouse=True)
def _no_sampling(settings: Any) -> None:
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 0


@pytest.fixture
def people(emulator: EmulatorClient) -> list[Mirror]:
    mirrors: list[Mirror] = []
    for email, zone in ACCOUNTS:
        mirror = make_mirror(emulator, email, zone)
        for day in range(5):
            start = mirror.now + timedelta(days=day, hours=1 + len(mirrors))
            emulator.add_event(email, start=start, end=start + timedelta(minutes=45))
        emulator.add_event(
            email,
            start=(mirror.now + timedelta(days=2)).date(),
            end=(mirror.now + timedelta(days=3)).date(),
        )
        mirrors.append(mirror)
    return mirrors


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def answers(people: list[Mirror]) -> dict[str, str]:
    """Every user's answer equals the emulator's freeBusy; returns their sources."""
    sources = {}
    for mirror in people:
        start, end = mirror.now, mirror.now + timedelta(days=7)
        result = get_availability(user=mirror.user, start=start, end=end)
        assert result.busy == mirror.google_busy(start, end), mirror.email
        sources[mirror.email] = result.source
    return sources


def refresh_all(people: list[Mirror]) -> None:
    for mirror in people:
        refresh_calendar(mirror.selected(), now=mirror.now)


def test_the_four_stages(people: list[Mirror]) -> None:
    ada, grace, katherine, linus = people
    team = TeamFactory(slug="internal", members=[ada.user, grace.user])

    # Stage 1: flags off. JSON/live answers, SQL stays empty.
    assert rollout_status().stage == 1
    assert set(answers(people).values()) == {"live"}
    assert set(answers(people).values()) == {"json"}
    refresh_all(people)
    assert not CalendarEvent.objects.exists()

    # Stage 2: writes for the team, SQL fills for exactly those users; answers unchanged.
    run("calendar_cache_rollout", "set-write", "--team", "internal")
    assert rollout_status().stage == 2
    refresh_all(people)
    assert set(CalendarEvent.objects.values_list("user_id", flat=True)) == {
        ada.user.pk,
        grace.user.pk,
    }
    assert set(answers(people).values()) == {"json"}

    # ...then 100% of writes (the team stays in): everyone's calendar is mirrored.
    run("calendar_cache_rollout", "set-write", "--percent", "100")
    refresh_all(people)
    assert set(CalendarEvent.objects.values_list("user_id", flat=True)) == {
        m.user.pk for m in people
    }

    # Stage 3: reads for the team: they get SQL, the others JSON; identical intervals.
    run("calendar_cache_rollout", "set-read", "--team", team.slug)
    assert rollout_status().stage == 3
    sources = answers(people)
    assert sources == {
        "ada@example.com": "sql",
        "grace@example.com": "sql",
        "katherine@example.com": "json",
        "linus@example.com": "json",
    }
    status_text = run("calendar_cache_rollout", "status")
    assert "Stage 3 of 4: dual read" in status_text
    assert "teams internal" in status_text

    # Stage 4: everyone reads SQL; then the JSON cache retires.
    run("calendar_cache_rollout", "set-read", "--everyone")
    assert rollout_status().stage == 4
    assert set(answers(people).values()) == {"sql"}
    Flag.objects.filter(name=READ_FLAG).update(modified=timezone.now() - timedelta(days=15))
    out = run("retire_json_cache")
    assert "Now set CALCACHE_JSON_CACHE_ENABLED=False" in out
    assert not CalendarCache.objects.exists()
    assert RolloutEvent.objects.filter(action="retire JSON cache").exists()
    assert set(answers(people).values()) == {"sql"}


def test_retire_refuses_before_its_time(people: list[Mirror]) -> None:
    with pytest.raises(CommandError, match="not on for everyone") as caught:
        call_command("retire_json_cache")
    assert caught.value.returncode == 1
    run("calendar_cache_rollout", "set-read", "--everyone")
    with pytest.raises(CommandError, match="must stay at 100%"):
        call_command("retire_json_cache")


def test_set_commands_validate_like_the_admin(people: list[Mirror]) -> None:
    with pytest.raises(CommandError, match="less than or equal to 100"):
        call_command("calendar_cache_rollout", "set-read", "--percent", "150")
    with pytest.raises(CommandError, match="no more than 3 decimal places"):
        call_command("calendar_cache_rollout", "set-read", "--percent", "1.23456")
    with pytest.raises(CommandError, match="not a number"):
        call_command("calendar_cache_rollout", "set-write", "--percent", "lots")
    with pytest.raises(CommandError, match="Unknown team 'nope'"):
        call_command("calendar_cache_rollout", "set-write", "--team", "nope")
    run("calendar_cache_rollout", "set-write", "--percent", "12.5")
    flag = Flag.objects.get(name=WRITE_FLAG)
    assert flag.percent == Decimal("12.5")
    event = RolloutEvent.objects.get(action=f"set {WRITE_FLAG}")
    assert event.reason == "percent 12.5"
    run("calendar_cache_rollout", "set-write", "--off")
    assert Flag.objects.get(name=WRITE_FLAG).everyone is False


def test_compare_calendar_caches_reports_and_exits_1_on_mismatch(
    people: list[Mirror], emulator: EmulatorClient
) -> None:
    # The command looks at the real next days: move everyone's clock to now.
    now = timezone.now().replace(microsecond=0)
    for mirror in people:
        mirror.now = now
        start = now + timedelta(days=1)
        emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=2))
    emulator.set_clock(now)
    run("calendar_cache_rollout", "set-write", "--everyone")
    refresh_all(people)
    answers(people)  # fills JSON blobs
    out = run("compare_calendar_caches", "--days", "5", "--live")
    assert "windows    20  (0 not covered by SQL" in out
    assert "compared   40" in out
    assert "mismatches 0  (0.00%)" in out
    assert "latency sql" in out and "latency json" in out and "latency live" in out
    CalendarEvent.objects.filter(user=people[0].user).delete()
    with pytest.raises(CommandError, match="above 1.0%") as caught:
        call_command("compare_calendar_caches", "--days", "5", stdout=StringIO())
    assert caught.value.returncode == 1
    assert not CacheComparison.objects.exists()  # the command writes nothing


def test_compare_calendar_caches_says_when_google_cannot_be_read(
    people: list[Mirror], emulator: EmulatorClient
) -> None:
    now = timezone.now().replace(microsecond=0)
    for mirror in people:
        mirror.now = now
    emulator.set_clock(now)
    run("calendar_cache_rollout", "set-write", "--everyone")
    refresh_all(people)
    emulator.fail_freebusy(people[0].email, reason="backendError")
    out = StringIO()
    with pytest.raises(CommandError, match=r"Google could not be read for 1 of 4 users") as caught:
        call_command("compare_calendar_caches", "--days", "2", "--live", stdout=out)
    assert caught.value.returncode == 1
    assert "live reads failed 1 of 4 users" in out.getvalue()
    assert f"user {people[0].user.pk}: live read failed:" in out.getvalue()
    assert "mismatches 0" in out.getvalue()  # the others were still compared
