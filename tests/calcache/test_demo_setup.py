"""calcache_demo --emulator: the demo users, connected, synced, at stage 3; twice."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from calcache.emulator import EmulatorClient
from calcache.models import AvailabilityStat, CalendarEvent, RolloutEvent
from calcache.rollout.stages import rollout_status
from flags.models import Flag, Team
from flags.names import READ_FLAG, WRITE_FLAG

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _demo_settings(settings: Any) -> None:
    settings.DEBUG = True  # calcache_demo refuses to run without it
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 0


def test_connects_syncs_and_reaches_stage_3_idempotently(emulator: EmulatorClient) -> None:
    emulator.seed_demo()
    out = StringIO()
    call_command("calcache_demo", "--emulator", emulator.base_url, stdout=out)
    User = get_user_model()
    team = Team.objects.get(slug="demo")
    for name in ("ada", "grace", "katherine"):
        user = User.objects.get(username=name)
        assert user.check_password("demo")
        assert team.members.filter(pk=user.pk).exists()
        assert CalendarEvent.objects.filter(user=user).count() > 100
    for flag in (READ_FLAG, WRITE_FLAG):
        assert list(Flag.objects.get(name=flag).teams.values_list("slug", flat=True)) == ["demo"]
    assert rollout_status().stage == 3
    assert set(AvailabilityStat.objects.values_list("source", flat=True)) == {
        "sql",
        "json",
        "live",
    }
    assert "Created user ada / demo." in out.getvalue()
    events = RolloutEvent.objects.count()

    again = StringIO()
    call_command("calcache_demo", "--emulator", emulator.base_url, stdout=again)
    assert "Created user" not in again.getvalue()
    assert User.objects.filter(username__in=["ada", "grace", "katherine"]).count() == 3
    assert RolloutEvent.objects.count() == events
    assert "stage 3" in again.getvalue()


def test_refuses_when_settings_point_elsewhere(emulator: EmulatorClient, settings: Any) -> None:
    settings.CALCACHE_GOOGLE_API_URL = "https://www.googleapis.com/calendar/v3/"
    with pytest.raises(CommandError, match="not the emulator's"):
        call_command("calcache_demo", "--emulator", emulator.base_url, stdout=StringIO())


def test_an_unseeded_emulator_is_a_clear_error(emulator: EmulatorClient) -> None:
    with pytest.raises(CommandError, match="has no account ada@example.com"):
        call_command("calcache_demo", "--emulator", emulator.base_url, stdout=StringIO())
