"""calcache.views.dashboard: the dashboard/ page through the Django test client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.utils import timezone

from calcache.availability.stats import stats
from calcache.emulator import EmulatorClient
from calcache.models import AvailabilityStat, CacheComparison
from calcache.rollout.stages import set_flag
from calcache.services import get_availability
from calcache.views.dashboard import latency_comparison
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


@pytest.mark.parametrize(
    ("sql_ms", "json_ms", "expected"),
    [
        (0.9, 1.8, "SQL answers in 0.90 ms on average, JSON in 1.80 ms: SQL is 2.0x faster."),
        (12.0, 3.0, "SQL answers in 12.0 ms on average, JSON in 3.00 ms: SQL is 4.0x slower."),
        (1.0, 1.02, "SQL answers in 1.00 ms on average, JSON in 1.02 ms: about as fast."),
        (0.5, None, "SQL answers in 0.50 ms on average; there are no JSON answers in the last"),
        (None, 2.0, "JSON answers in 2.00 ms on average; there are no SQL answers in the last"),
        (None, None, "No SQL or JSON answers in the last 24 hours"),
    ],
)
def test_latency_comparison_says_which_source_is_faster(
    sql_ms: float | None, json_ms: float | None, expected: str
) -> None:
    assert latency_comparison(sql_ms=sql_ms, json_ms=json_ms).startswith(expected)


def test_dashboard_compares_the_sql_and_json_latency(staff: Client) -> None:
    minute = timezone.now().replace(second=0, microsecond=0)
    for source, requests, total_ms in (("sql", 4, 3.6), ("json", 2, 3.6)):
        AvailabilityStat.objects.create(
            minute=minute, source=source, requests=requests, total_ms=total_ms, max_ms=2
        )
    html = staff.get(DASHBOARD).content.decode()
    assert (
        '<p id="latency-comparison">SQL answers in 0.90 ms on average, JSON in 1.80 ms: '
        "SQL is 2.0x faster.</p>"
    ) in html
    assert "SQL / JSON latency" not in html


def test_dashboard_without_latency_samples_says_so(staff: Client) -> None:
    html = staff.get(DASHBOARD).content.decode()
    assert "No SQL or JSON answers in the last 24 hours" in html
