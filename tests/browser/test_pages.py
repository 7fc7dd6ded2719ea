"""The me/ and dashboard/ pages in a real browser, against the seeded Google emulator."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone

from calcache.emulator import EmulatorClient
from calcache.models import AvailabilityStat, CacheComparison
from calcache.rollout.stages import set_flag
from calcache.services import connect_google_account
from flags.names import READ_FLAG, WRITE_FLAG
from tests.browser.conftest import log_in, screenshot
from tests.calcache.sync.conftest import NOW, Mirror
from tests.factories import TeamFactory, UserFactory, grant_permission
from tests.markers import committing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = committing
HOUR_PX = 28  # me.html: a 672px day column


@pytest.fixture(autouse=True)
def _no_sampling(settings: Any) -> None:
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 0


@pytest.fixture
def ada(emulator: EmulatorClient) -> Mirror:
    """A user connected to the demo seed's ada@example.com, synced, reading SQL."""
    emulator.set_clock(NOW)
    emulator.seed_demo(now=NOW)
    user = UserFactory(username="ada")
    connect_google_account(user=user, token=emulator.authorized_token("ada@example.com"))
    TeamFactory(slug="internal", members=[user])
    set_flag(name=WRITE_FLAG, team="internal")
    mirror = Mirror(emulator=emulator, user=user, email="ada@example.com")
    assert mirror.sync().outcome.synced
    set_flag(name=READ_FLAG, team="internal")
    return mirror


def expected_week(mirror: Mirror, monday: datetime) -> list[tuple[str, str]]:
    busy = mirror.google_busy(monday, monday + timedelta(days=7))
    return [(start.isoformat(), end.isoformat()) for start, end in busy]


def shown_week(page: Page) -> list[tuple[str, str]]:
    """The distinct busy intervals drawn in the grid (a block past midnight is drawn twice)."""
    drawn = page.eval_on_selector_all(
        "#week .busy-block", "els => els.map(e => [e.dataset.start, e.dataset.end])"
    )
    return sorted({(start, end) for start, end in drawn})


def test_me_shows_the_emulators_events_and_pages_between_weeks(page: Page, ada: Mirror) -> None:
    log_in(page, "ada", "password")
    assert page.url.endswith("/calendar-cache/me/")  # LOGIN_REDIRECT_URL
    page.goto("/calendar-cache/me/?week=2026-03-02")

    expected = expected_week(ada, NOW.replace(hour=0))
    assert len(expected) >= 3
    assert shown_week(page) == expected
    assert page.locator("#busy-list li").count() == len(expected)
    assert page.text_content("#busy-count") == f"{len(expected)} busy blocks"
    assert page.get_attribute("#source", "data-source") == "sql"

    # Blocks are placed by time: a block's top is its start's offset in the day column.
    first = page.locator("#week .busy-block").first
    start = datetime.fromisoformat(first.get_attribute("data-start") or "")
    day = page.locator(f'#week .day[data-date="{start:%Y-%m-%d}"]')
    column, block = day.bounding_box(), first.bounding_box()
    assert column is not None and block is not None
    hours = start.hour + start.minute / 60
    assert abs(block["y"] - column["y"] - hours * HOUR_PX) < 2
    screenshot(page, "me-week.png")

    page.click("#next-week")
    page.wait_for_url("**/me/?week=2026-03-09")
    assert shown_week(page) == expected_week(ada, NOW.replace(hour=0) + timedelta(days=7))
    page.click("#previous-week")
    page.click("#previous-week")
    page.wait_for_url("**/me/?week=2026-02-23")
    assert shown_week(page) == expected_week(ada, NOW.replace(hour=0) - timedelta(days=7))
    assert "Week of 23 February 2026" in (page.text_content("h1") or "")


def add_history(mirror: Mirror) -> None:
    """Two hours of per-minute answers and shadow comparisons, as a busy site has."""
    rng = random.Random(7)
    now = timezone.now().replace(second=0, microsecond=0)
    means = {"sql": 1.2, "json": 6.0, "live": 180.0}
    for minute in range(120, 0, -1):
        at = now - timedelta(minutes=minute)
        for source, mean in means.items():
            requests = rng.randint(5, 40) if source != "live" else rng.randint(0, 3)
            if requests:
                total = sum(rng.uniform(0.5, 1.5) * mean for _ in range(requests))
                AvailabilityStat.objects.create(
                    minute=at, source=source, requests=requests, total_ms=total, max_ms=2 * mean
                )
        if minute % 5 == 0:
            comparison = CacheComparison.objects.create(
                user=mirror.user,
                window_start=NOW,
                window_end=NOW + timedelta(days=7),
                source_a="sql",
                source_b="json",
                equal=minute != 60,
                latency_a_ms=1.0,
                latency_b_ms=6.0,
            )
            CacheComparison.objects.filter(pk=comparison.pk).update(created_at=at)


def test_staff_sees_the_dashboard_and_admin_changes_show_on_it(page: Page, ada: Mirror) -> None:
    add_history(ada)
    UserFactory(username="operator", is_staff=True, is_superuser=True)
    log_in(page, "operator", "password")
    page.goto("/calendar-cache/dashboard/")
    assert "Stage 3: dual read" in (page.text_content("#stage") or "")
    charts = page.locator("svg.chart")
    assert charts.count() == 5
    for index in range(5):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
    latency = charts.first
    assert latency.locator('polyline.series[data-series="sql"]').count() == 1
    points = latency.locator('polyline[data-series="live"]').get_attribute("points") or ""
    assert len(points.split()) > 50  # two hours of 2-minute buckets
    assert page.text_content('[data-flag="calendar-cache-sql"] .percent') == "none"
    assert "1 ok" in (page.text_content("#sync-health") or "")
    # add_history's means: SQL about 1.2 ms, JSON about 6 ms
    comparison = page.text_content("#latency-comparison") or ""
    assert comparison.startswith("SQL answers in ") and "x faster." in comparison
    screenshot(page, "dashboard.png")

    page.goto("/admin/flags/flag/")
    page.get_by_role("link", name=READ_FLAG, exact=True).click()
    page.wait_for_url("**/admin/flags/flag/*/change/")
    assert page.input_value("#id_name") == READ_FLAG
    page.fill("#id_percent", "25")
    screenshot(page, "admin-flag.png")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/flags/flag/")
    assert page.locator(".messagelist .success").count() == 1

    page.goto("/calendar-cache/dashboard/")
    assert page.text_content('[data-flag="calendar-cache-sql"] .percent') == "25%"
    screenshot(page, "dashboard-after-admin.png")


def test_a_user_without_the_dashboard_permission_gets_a_styled_403(page: Page, ada: Mirror) -> None:
    log_in(page, "ada", "password")
    response = page.goto("/calendar-cache/dashboard/")
    assert response is not None and response.status == 403
    assert "calcache.view_dashboard" in (page.text_content("#forbidden") or "")
    card = page.locator("#forbidden").bounding_box()
    assert card is not None and card["width"] > 300  # the site's card, not a bare page
    screenshot(page, "dashboard-403.png")
    grant_permission(ada.user, "calcache.view_dashboard")
    response = page.goto("/calendar-cache/dashboard/")
    assert response is not None and response.status == 200


def test_google_down_shows_a_friendly_message(page: Page, emulator: EmulatorClient) -> None:
    emulator.set_clock(NOW)
    user = UserFactory(username="grace")
    connect_google_account(user=user, token=emulator.add_account("grace@example.com"))
    log_in(page, "grace", "password")
    emulator.fail_next(50, status=503, reason="backendError")
    page.goto("/calendar-cache/me/?week=2026-03-02")
    assert "can't be reached right now" in (page.text_content("#unavailable") or "")
    screenshot(page, "me-google-down.png")


def test_a_german_browser_gets_german_pages_that_link_each_other(
    browser: Browser, live_server: Any, settings: Any, ada: Mirror
) -> None:
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    context = browser.new_context(base_url=live_server.url, locale="de-DE")
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        log_in(page, "ada", "password")
        page.goto("/calendar-cache/me/?week=2026-03-02")
        assert page.get_attribute("html", "lang") == "de"
        assert "Woche vom 2. März 2026 – 8. März 2026" in (page.text_content("h1") or "")
        assert "belegte Blöcke" in (page.text_content("#busy-count") or "")
        page.click("#calendars-link")
        page.wait_for_url("**/calendar-cache/calendars/")
        assert page.text_content("h1") == "Ihre Kalender"
        page.click("#week-link")
        page.wait_for_url("**/calendar-cache/me/")
        screenshot(page, "me-week-de.png")
    finally:
        context.close()
