"""calcache.views.webhooks: the HTTP face of POST webhooks/google/.

Every malformed header is a 400 with a JSON reason, never a 5xx; the regression tests
are the review's reproducers (issue 15), on whichever database DATABASE_URL names.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from calcache.conf import conf
from calcache.models import PushChannel, SelectedCalendar
from calcache.push.tokens import new_channel_token, token_hash
from tests.celery_worker import producer_for
from tests.factories import SelectedCalendarFactory
from tests.notifications import WEBHOOK_TOKEN, WEBHOOK_URL, notify

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _token(settings: Any) -> None:
    settings.CALCACHE_WEBHOOK_TOKEN = WEBHOOK_TOKEN
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.DirtyFlagRunner"


@pytest.fixture
def channel() -> tuple[PushChannel, str]:
    """A live channel with a token of its own, and that token."""
    selected = SelectedCalendarFactory(calendar_id="ada@example.com")
    channel_id = "calcache-0123456789abcdef0123456789abcdef"
    token = new_channel_token(channel_id)
    row = PushChannel.objects.create(
        selected_calendar=selected,
        channel_id=channel_id,
        resource_id="resource-1",
        expiration=timezone.now() + timedelta(days=7),
        token_hash=token_hash(token),
    )
    return row, token


def notification(channel: PushChannel, token: str, **changes: str) -> dict[str, str]:
    sent = {
        "X-Goog-Channel-ID": channel.channel_id,
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "2",
        "X-Goog-Resource-URI": (
            "https://www.googleapis.com/calendar/v3/calendars/ada%40example.com/events?alt=json"
        ),
    }
    return {**sent, **changes}


def assert_400(response: Any, mentions: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert mentions in response.json()["error"]


def nothing_done(channel: PushChannel) -> bool:
    channel.refresh_from_db()
    return (
        channel.last_message_number is None
        and SelectedCalendar.objects.get(pk=channel.selected_calendar_id).dirty_since is None
    )


def test_only_post_is_allowed(client: Client) -> None:
    assert client.get(WEBHOOK_URL).status_code == 405


def test_a_wrong_token_is_403_with_a_json_reason(client: Client) -> None:
    response = client.post(WEBHOOK_URL, headers={"X-Goog-Channel-Token": "nope"})
    assert response.status_code == 403
    assert response.json() == {"error": "Missing or wrong X-Goog-Channel-Token."}


def test_google_needs_no_csrf_token_and_gets_the_outcome_as_json() -> None:
    google = Client(enforce_csrf_checks=True)  # Google sends no CSRF cookie
    stranger = PushChannel(channel_id="not-ours", resource_id="r-1")  # no such row
    assert notify(google, stranger, state="sync") == {"status": "unknown channel"}


def test_a_valid_notification_marks_its_calendar(
    client: Client, channel: tuple[PushChannel, str]
) -> None:
    row, token = channel
    response = client.post(WEBHOOK_URL, headers=notification(row, token))
    assert response.status_code == 200 and response.json() == {"status": "queued"}
    row.refresh_from_db()
    assert row.last_message_number == 2
    assert SelectedCalendar.objects.get().dirty_since is not None


def test_regression_a_message_number_beyond_a_bigint_is_400(
    client: Client, channel: tuple[PushChannel, str]
) -> None:
    row, token = channel
    sent = notification(row, token, **{"X-Goog-Message-Number": "99999999999999999999999"})
    assert_400(client.post(WEBHOOK_URL, headers=sent), "X-Goog-Message-Number")
    assert nothing_done(row)


def test_regression_a_5000_digit_message_number_is_400(
    client: Client, channel: tuple[PushChannel, str]
) -> None:
    # int() of it raises ValueError (Python's int-string conversion limit).
    row, token = channel
    sent = notification(row, token, **{"X-Goog-Message-Number": "9" * 5000})
    assert_400(client.post(WEBHOOK_URL, headers=sent), "X-Goog-Message-Number")
    assert nothing_done(row)


@pytest.mark.parametrize("number", ["9223372036854775808", "-1", "1.5", "1e3", "", " 7", "٣"])
def test_a_message_number_that_is_no_bigint_is_400(
    client: Client, channel: tuple[PushChannel, str], number: str
) -> None:
    row, token = channel
    sent = notification(row, token, **{"X-Goog-Message-Number": number})
    assert_400(client.post(WEBHOOK_URL, headers=sent), "X-Goog-Message-Number")


def test_the_largest_bigint_is_a_message_number(
    client: Client, channel: tuple[PushChannel, str]
) -> None:
    row, token = channel
    sent = notification(row, token, **{"X-Goog-Message-Number": str(2**63 - 1)})
    assert client.post(WEBHOOK_URL, headers=sent).json() == {"status": "queued"}
    assert client.post(WEBHOOK_URL, headers=sent).json() == {"status": "replayed"}


def test_a_missing_message_number_is_400_once_the_token_holds(
    client: Client, channel: tuple[PushChannel, str]
) -> None:
    row, token = channel
    sent = notification(row, token)
    del sent["X-Goog-Message-Number"]
    assert_400(client.post(WEBHOOK_URL, headers=sent), "X-Goog-Message-Number is required")
    sent["X-Goog-Channel-Token"] = "nope"
    assert client.post(WEBHOOK_URL, headers=sent).status_code == 403


@pytest.mark.parametrize("known", [True, False], ids=["known channel", "unknown channel"])
def test_regression_a_nul_in_the_resource_uri_is_400(
    client: Client, channel: tuple[PushChannel, str], known: bool
) -> None:
    # unquoted to NUL, it reached a query: PostgreSQL's DataError, a 500
    row, token = channel
    if not known:
        row.delete()
    uri = "https://www.googleapis.com/calendar/v3/calendars/ada%00example.com/events"
    sent = notification(row, token, **{"X-Goog-Resource-URI": uri})
    assert_400(client.post(WEBHOOK_URL, headers=sent), "X-Goog-Resource-Uri")


def test_a_resource_uri_naming_an_overlong_calendar_is_400(
    client: Client, channel: tuple[PushChannel, str]
) -> None:
    row, token = channel
    uri = f"https://www.googleapis.com/calendar/v3/calendars/{'a' * 256}/events"
    sent = notification(row, token, **{"X-Goog-Resource-URI": uri})
    assert_400(client.post(WEBHOOK_URL, headers=sent), "X-Goog-Resource-Uri")


def test_regression_a_channel_id_longer_than_the_column_is_400(
    client: Client, channel: tuple[PushChannel, str]
) -> None:
    row, _ = channel
    long_id = "c" * 65
    sent = notification(row, new_channel_token(long_id), **{"X-Goog-Channel-ID": long_id})
    assert_400(client.post(WEBHOOK_URL, headers=sent), "X-Goog-Channel-Id")


@pytest.mark.parametrize(
    "header",
    [
        "X-Goog-Channel-ID",
        "X-Goog-Channel-Token",
        "X-Goog-Resource-ID",
        "X-Goog-Resource-State",
        "X-Goog-Resource-URI",
        "X-Goog-Message-Number",
    ],
)
@pytest.mark.parametrize("junk", ["caf\u00e9", "nul\x00", "tab\there", "\u2603" * 3])
def test_regression_non_ascii_or_control_characters_in_any_header_are_400(
    client: Client, channel: tuple[PushChannel, str], header: str, junk: str
) -> None:
    row, token = channel
    response = client.post(WEBHOOK_URL, headers=notification(row, token, **{header: junk}))
    assert_400(response, header.replace("-ID", "-Id").replace("-URI", "-Uri"))
    assert nothing_done(row)


def test_an_overlong_token_or_resource_id_is_400(
    client: Client, channel: tuple[PushChannel, str]
) -> None:
    row, token = channel
    for header, value in (("X-Goog-Channel-Token", "t" * 257), ("X-Goog-Resource-ID", "r" * 256)):
        response = client.post(WEBHOOK_URL, headers=notification(row, token, **{header: value}))
        assert_400(response, header.replace("-ID", "-Id"))


def test_a_signed_token_of_an_unknown_channel_is_accepted_and_a_forged_one_is_403(
    client: Client,
) -> None:
    stranger = PushChannel(channel_id="calcache-gone", resource_id="r-1")
    signed = new_channel_token("calcache-gone")
    sent = notification(stranger, signed)
    assert client.post(WEBHOOK_URL, headers=sent).json() == {"status": "unknown channel"}
    nonce, _, mac = signed.partition(".")
    for forged in (f"{nonce}.{mac[::-1]}", new_channel_token("calcache-other"), f".{mac}"):
        sent["X-Goog-Channel-Token"] = forged
        assert client.post(WEBHOOK_URL, headers=sent).status_code == 403


def test_inside_a_transaction_the_refresh_is_submitted_after_the_commit(
    client: Client,
    channel: tuple[PushChannel, str],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The test's transaction stands in for a caller's: the answer cannot know the
    # runner's verdict, so it is "queued"; a refusal after the commit still leaves the
    # mark dated as lost for the sweep.
    row, token = channel
    settings.CALCACHE_BACKGROUND_RUNNER = "calcache.background.runners.CeleryRunner"
    with (
        producer_for("redis://127.0.0.1:1/0", settings),  # nothing listens there
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = client.post(WEBHOOK_URL, headers=notification(row, token))
        assert response.json() == {"status": "queued"}
    assert len(callbacks) == 1
    dirty_since = SelectedCalendar.objects.get().dirty_since
    assert dirty_since is not None
    assert dirty_since <= timezone.now() - timedelta(seconds=conf.dirty_grace_seconds)
