"""The cleanup_calendar_cache command through call_command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from calcache.models import CalendarCache, CalendarEvent, CalendarSyncToken
from tests.factories import CalendarCacheFactory, CalendarEventFactory, CalendarSyncTokenFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("cleanup_calendar_cache", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def ended(days_ago: int) -> CalendarEvent:
    end = timezone.now() - timedelta(days=days_ago)
    return CalendarEventFactory(start_time=end - timedelta(hours=1), end_time=end)


def test_a_dry_run_reports_what_the_cleanup_then_deletes() -> None:
    old = ended(100)
    CalendarCacheFactory(credential=old.credential, expires_at=timezone.now())
    CalendarSyncTokenFactory(credential=old.credential, calendar_id="deselected@example.com")
    counts = "1 expired JSON cache entry(ies) and 1 orphan sync token(s)"

    out, _ = run("--dry-run")
    assert out.startswith("Would delete 1 event(s) that ended before ") and counts in out
    assert "events/s" not in out
    assert CalendarEvent.objects.count() == CalendarCache.objects.count() == 1

    out, _ = run("--batch-size", "1")
    assert out.startswith("Deleted 1 event(s)") and counts in out and "events/s" in out
    assert not CalendarEvent.objects.exists() and not CalendarCache.objects.exists()
    assert not CalendarSyncToken.objects.exists()


def test_the_days_default_to_the_retention_setting(settings: Any) -> None:
    settings.CALCACHE_RETENTION_DAYS = 40
    ended(50)
    recent = ended(35)
    out, err = run()
    assert out.startswith("Deleted 1 event(s)") and err == ""
    assert list(CalendarEvent.objects.values_list("pk", flat=True)) == [recent.pk]


def test_cleanup_days_option_and_bad_input() -> None:
    ended(10)
    _, err = run("--days", "5")
    assert "inside the synced window" in err
    assert not CalendarEvent.objects.exists()
    with pytest.raises(CommandError, match="cannot be negative"):
        call_command("cleanup_calendar_cache", "--days", "-1")
    with pytest.raises(CommandError, match="batch-size"):
        call_command("cleanup_calendar_cache", "--batch-size", "0")
