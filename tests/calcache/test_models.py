"""Model constraints and the busy predicate, on whichever database runs the suite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from calcache.models import CalendarEvent
from tests.factories import (
    BUSY_CASES,
    CalendarCacheFactory,
    CalendarEventFactory,
    CalendarSyncTokenFactory,
    CredentialFactory,
    SelectedCalendarFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_event_identity_is_unique_per_credential_and_calendar() -> None:
    event = CalendarEventFactory(google_event_id="abc")
    with pytest.raises(IntegrityError), transaction.atomic():
        CalendarEventFactory(
            credential=event.credential, calendar_id=event.calendar_id, google_event_id="abc"
        )
    # same id in another calendar or another credential is a different event
    CalendarEventFactory(credential=event.credential, calendar_id="other", google_event_id="abc")
    CalendarEventFactory(calendar_id=event.calendar_id, google_event_id="abc")
    assert CalendarEvent.objects.filter(google_event_id="abc").count() == 3


def test_event_cannot_end_before_it_starts() -> None:
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        CalendarEventFactory(start_time=now, end_time=now - timedelta(minutes=1))
    zero_length = CalendarEventFactory(start_time=now, end_time=now)
    assert zero_length.pk


def test_selected_calendar_unique_per_credential() -> None:
    selected = SelectedCalendarFactory(calendar_id="team@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        SelectedCalendarFactory(credential=selected.credential, calendar_id="team@example.com")
    SelectedCalendarFactory(calendar_id="team@example.com")  # another credential


def test_sync_token_unique_per_calendar() -> None:
    token = CalendarSyncTokenFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        CalendarSyncTokenFactory(credential=token.credential, calendar_id=token.calendar_id)


def test_json_cache_key_unique_per_credential() -> None:
    entry = CalendarCacheFactory(key="k")
    with pytest.raises(IntegrityError), transaction.atomic():
        CalendarCacheFactory(credential=entry.credential, key="k")
    CalendarCacheFactory(key="k")


def test_credential_unique_per_user_and_account() -> None:
    credential = CredentialFactory(account_email="a@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        CredentialFactory(user=credential.user, account_email="a@example.com")
    CredentialFactory(account_email="a@example.com")  # another user may connect it too


def test_deleting_a_user_removes_credentials_events_and_tokens() -> None:
    user = UserFactory()
    credential = CredentialFactory(user=user)
    CalendarEventFactory.create_batch(3, credential=credential)
    SelectedCalendarFactory(credential=credential)
    CalendarSyncTokenFactory(credential=credential)
    CalendarCacheFactory(credential=credential)
    other = CalendarEventFactory()
    user.delete()
    assert list(CalendarEvent.objects.values_list("pk", flat=True)) == [other.pk]
    assert not credential.selected_calendars.exists()


@pytest.mark.parametrize(("fields", "busy"), BUSY_CASES)
def test_busy_predicate_in_sql_matches_python(fields: dict[str, str], busy: bool) -> None:
    event = CalendarEventFactory(**fields)
    assert event.is_busy is busy
    assert CalendarEvent.objects.busy().filter(pk=event.pk).exists() is busy


def test_overlapping_uses_exclusive_bounds_and_keeps_long_events() -> None:
    t0 = timezone.now().replace(microsecond=0)
    credential = CredentialFactory()

    def make(name: str, start: timedelta, end: timedelta) -> None:
        CalendarEventFactory(
            credential=credential, google_event_id=name, start_time=t0 + start, end_time=t0 + end
        )

    make("ends-at-start", timedelta(hours=-1), timedelta(0))
    make("starts-at-end", timedelta(hours=2), timedelta(hours=3))
    make("inside", timedelta(minutes=30), timedelta(hours=1))
    make("multi-day-began-earlier", timedelta(days=-3), timedelta(hours=1))
    window = CalendarEvent.objects.overlapping(t0, t0 + timedelta(hours=2))
    assert set(window.values_list("google_event_id", flat=True)) == {
        "inside",
        "multi-day-began-earlier",
    }
    bounded = CalendarEvent.objects.overlapping(
        t0, t0 + timedelta(hours=2), longest=timedelta(days=3, hours=1)
    )
    assert set(bounded.values_list("google_event_id", flat=True)) == {
        "inside",
        "multi-day-began-earlier",
    }


def test_credential_repr_and_str_never_show_the_token() -> None:
    credential = CredentialFactory(account_email="who@example.com")
    for text in (repr(credential), str(credential)):
        assert "refresh" not in text and "ya29" not in text
    assert "who@example.com" in str(credential)
