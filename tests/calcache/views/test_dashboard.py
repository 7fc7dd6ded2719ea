"""calcache.views.dashboard: the dashboard/ page through the Django test client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client, override_settings

from calcache.availability.stats import stats
from calcache.emulator import EmulatorClient
from calcache.models import AvailabilityStat, CacheComparison
from calcache.rollout.stages import set_flag
from calcache.services import get_availability
from flags.models import Flag
from flags.names import READ_FLAG
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.factories import UserFactory, grant_permission

pytestmark = pytest.mark.django_db
DASHBOARD = "/calendar-cache/dashboard/"


@pytest.fixture
def ada(emulator: EmulatorClient) -> Mirror:
    return make_mirror(emulator)


@pytest.fixture
def staff(client: Client) -> Client:
    """Signed in as an operator granted calcache.view_dashboard (not a superuser)."""
    operator = UserFactory(is_staff=True)
    grant_permission(operator, "calcache.view_dashboard")
    client.force_login(operator)
    return client


def assert_styled_403(response: Any) -> None:
    html = response.content.decode()
    assert response.status_code == 403
    assert '<span class="brand">Calendar cache</span>' in html  # the site's own layout
    assert 'id="forbidden"' in html and "calcache.view_dashboard" in html
    assert ">Go to my week</a>" in html
    assert "Sync health" not in html


def test_dashboard_is_forbidden_to_users_without_the_permission(client: Client) -> None:
    client.force_login(UserFactory(username="bob"))
    response = client.get(DASHBOARD)
    assert_styled_403(response)
    assert "<strong>bob</strong>" in response.content.decode()
    assert "Sign out" in response.content.decode()  # this host has a logout URL


def test_staff_status_alone_is_not_enough(client: Client) -> None:
    client.force_login(UserFactory(is_staff=True))
    assert_styled_403(client.get(DASHBOARD))


def test_superusers_have_the_permission_implicitly(client: Client) -> None:
    client.force_login(UserFactory(is_superuser=True))
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    assert "Sync health" in response.content.decode()


def test_the_permission_alone_suffices_without_staff_status(client: Client) -> None:
    reader = UserFactory()
    grant_permission(reader, "calcache.view_dashboard")
    client.force_login(reader)
    assert client.get(DASHBOARD).status_code == 200


def test_the_permission_through_a_group(client: Client) -> None:
    operators = Group.objects.create(name="operators")
    grant_permission(operators, "calcache.view_dashboard")
    member = UserFactory()
    member.groups.add(operators)
    client.force_login(member)
    assert client.get(DASHBOARD).status_code == 200


@override_settings(ROOT_URLCONF="tests.projects.minimal_host.urls")
def test_pages_render_in_a_host_without_logout_or_admin_urls(client: Client) -> None:
    # tests/projects/minimal_host mounts calcache alone: no "logout", no "admin:index"
    url = "/scheduling/cache/dashboard/"
    client.force_login(UserFactory())
    response = client.get(url)
    assert_styled_403(response)
    assert "Sign out" not in response.content.decode()
    client.force_login(UserFactory(is_superuser=True))
    response = client.get(url)
    assert response.status_code == 200
    assert "Sync health" in response.content.decode()


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


def test_the_week_page_links_the_dashboard_only_with_the_permission(client: Client) -> None:
    link = 'href="/calendar-cache/dashboard/"'
    client.force_login(UserFactory(is_staff=True))
    assert link not in client.get("/calendar-cache/me/").content.decode()
    reader = UserFactory()
    grant_permission(reader, "calcache.view_dashboard")
    client.force_login(reader)
    assert link in client.get("/calendar-cache/me/").content.decode()
