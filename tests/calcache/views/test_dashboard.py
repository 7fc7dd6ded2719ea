"""calcache.views.dashboard: the dashboard/ page through the Django test client."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from calcache.availability.stats import stats
from calcache.emulator import EmulatorClient
from calcache.models import AvailabilityStat, CacheComparison
from calcache.rollout.stages import set_flag
from calcache.services import get_availability
from flags.models import Flag
from flags.names import READ_FLAG
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
DASHBOARD = "/calendar-cache/dashboard/"


@pytest.fixture
def ada(emulator: EmulatorClient) -> Mirror:
    return make_mirror(emulator)


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(UserFactory(is_staff=True))
    return client


def test_dashboard_is_forbidden_to_non_staff(client: Client) -> None:
    client.force_login(UserFactory())
    assert client.get(DASHBOARD).status_code == 403


def test_dashboard_redirects_anonymous_to_login(client: Client) -> None:
    response = client.get(DASHBOARD)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={DASHBOARD}"


def test_dashboard_for_staff(ada: Mirror, staff: Client, write_flag_on: None) -> None:
    ada.sync()
    set_flag(name=READ_FLAG, percent="25")
    window = (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC))
    get_availability(user=ada.user, start=window[0], end=window[1])  # live, counted in memory
    assert not AvailabilityStat.objects.exists()
    CacheComparison.objects.create(
        user=ada.user,
        window_start=window[0],
        window_end=window[1],
        source_a="sql",
        source_b="json",
        equal=False,
        latency_a_ms=1,
        latency_b_ms=2,
    )
    response = staff.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert AvailabilityStat.objects.filter(requests=1).exists()  # flushed by the view
    assert "Stage 3: dual read" in html
    assert html.count("<svg") == 5
    assert 'data-series="live"' in html and 'data-series="sql"' in html
    assert '<span class="percent">25%</span>' in html
    assert "of 1 selected calendars fully synced" in html
    assert "100.00%" in html  # one comparison, which disagreed
    assert ada.email in html and ">ok<" in html


def test_dashboard_sync_health_shows_invalid_credentials(ada: Mirror, staff: Client) -> None:
    credential = ada.selected().credential
    credential.invalid = True
    credential.invalid_reason = "invalid_grant: Token has been revoked."
    credential.save()
    html = staff.get(DASHBOARD).content.decode()
    assert "1 invalid credential" in html
    assert "Token has been revoked." in html


def test_read_flag_percent_shows_as_given(staff: Client) -> None:
    Flag.objects.filter(name=READ_FLAG).update(percent="12.5")
    assert '<span class="percent">12.5%</span>' in staff.get(DASHBOARD).content.decode()


def test_stats_are_flushed_before_rendering(staff: Client) -> None:
    stats.record("json", 0.004)
    staff.get(DASHBOARD)
    assert AvailabilityStat.objects.get(source="json").requests == 1
