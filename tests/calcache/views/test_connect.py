"""The connect flow and the calendar picker, through the test client against the emulator.

The emulator's consent page is driven with ``requests``, as a person's browser would.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client
from django.urls import reverse

from calcache.emulator import EmulatorClient
from calcache.emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from calcache.models import Credential, PushChannel, SelectedCalendar
from calcache.services import connect_google_account
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CONNECT = "/calendar-cache/connect/google/"
CALLBACK = "/calendar-cache/connect/google/callback/"
CALENDARS = "/calendar-cache/calendars/"
ADA = "ada@example.com"
WORK = "work@group.calendar.google.com"
WEBHOOK_URL = "http://127.0.0.1:9/calendar-cache/webhooks/google/"


@pytest.fixture(autouse=True)
def _oauth_client(settings: Any, emulator: EmulatorClient) -> None:
    settings.CALCACHE_GOOGLE_CLIENT_ID = DEFAULT_CLIENT_ID
    settings.CALCACHE_GOOGLE_CLIENT_SECRET = DEFAULT_CLIENT_SECRET


@pytest.fixture
def ada(emulator: EmulatorClient, client: Client) -> Any:
    """A logged-in user whose Google account has a primary and a "Work" calendar."""
    emulator.add_account(ADA, time_zone="Europe/London")
    emulator.add_calendar(ADA, calendar_id=WORK, summary="Work", time_zone="Europe/Berlin")
    user = UserFactory(email=ADA)
    client.force_login(user)
    return user


@pytest.fixture
def connected(ada: Any, emulator: EmulatorClient) -> Credential:
    """Ada's account connected without the browser dance: the primary calendar selected."""
    return connect_google_account(user=ada, token=emulator.authorized_token(ADA))


@pytest.fixture
def webhooks_on(settings: Any) -> None:
    settings.CALCACHE_WEBHOOK_URL = WEBHOOK_URL
    settings.CALCACHE_WEBHOOK_TOKEN = "t"


def consent(client: Client, emulator: EmulatorClient, *, decision: str = "allow") -> str:
    """Start connecting, answer Google's consent page; the callback's query string."""
    start = client.get(CONNECT)
    assert start.status_code == 302
    url = start["Location"]
    assert url.startswith(emulator.auth_uri)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["login_hint"] == ADA
    assert query["redirect_uri"] == f"http://testserver{CALLBACK}"
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "Allow" in page.text
    answer = requests.post(
        url.split("?")[0],
        data={**query, "email": ADA, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(f"http://testserver{CALLBACK}?")
    return urlsplit(location).query


def save_selection(client: Client, credential: Credential, *calendar_ids: str) -> Any:
    response = client.post(
        CALENDARS, {"credential": credential.pk, "calendar": list(calendar_ids)}, follow=True
    )
    assert response.redirect_chain == [(CALENDARS, 302)]
    return response


def enabled(credential: Credential) -> dict[str, bool]:
    return dict(
        SelectedCalendar.objects.filter(credential=credential).values_list("calendar_id", "enabled")
    )


def checked(response: Any) -> list[str]:
    """The calendar ids whose checkbox is ticked on the calendars page."""
    html = response.content.decode()
    return [value for value in (WORK, ADA) if f'name="calendar" value="{value}" checked' in html]


def test_urls_are_named() -> None:
    assert reverse("calcache:connect-google") == CONNECT
    assert reverse("calcache:connect-google-callback") == CALLBACK
    assert reverse("calcache:calendars") == CALENDARS


def test_connect_pick_and_save_end_to_end(
    ada: Any, client: Client, emulator: EmulatorClient
) -> None:
    query = consent(client, emulator)
    response = client.get(f"{CALLBACK}?{query}")
    assert response.status_code == 302 and response["Location"] == CALENDARS

    credential = Credential.objects.get(user=ada)
    assert credential.account_email == ADA and credential.token["refresh_token"]
    primary = SelectedCalendar.objects.get(credential=credential)
    assert (primary.calendar_id, primary.is_primary, primary.enabled) == (ADA, True, True)
    assert primary.time_zone == "Europe/London"
    assert "calcache_google_oauth" not in client.session  # the state is single-use

    page = client.get(CALENDARS)
    assert page.status_code == 200
    assert f"Connected {ADA}" in page.content.decode()
    assert "Work" in page.content.decode() and "Europe/Berlin" in page.content.decode()
    assert checked(page) == [ADA]

    saved = save_selection(client, credential, WORK)
    assert enabled(credential) == {ADA: False, WORK: True}
    work = SelectedCalendar.objects.get(calendar_id=WORK)
    assert (work.time_zone, work.is_primary) == ("Europe/Berlin", False)
    assert f"Saved. Mirroring for {ADA}: Work." in saved.content.decode()
    assert checked(saved) == [WORK]
    assert "Mirrored now: Work." in saved.content.decode()


def test_a_second_connect_keeps_the_selection(
    connected: Credential, client: Client, emulator: EmulatorClient
) -> None:
    save_selection(client, connected, WORK)
    assert client.get(f"{CALLBACK}?{consent(client, emulator)}").status_code == 302
    assert Credential.objects.get() == connected
    assert enabled(connected) == {ADA: False, WORK: True}


def test_wrong_or_missing_state_is_refused(
    ada: Any, client: Client, emulator: EmulatorClient
) -> None:
    query = parse_qs(consent(client, emulator))
    wrong = client.get(CALLBACK, {"code": query["code"][0], "state": "forged"})
    assert wrong.status_code == 400
    assert "not valid" in wrong.content.decode()
    # the pending sign-in is gone after one attempt: replaying the right state fails too
    replay = client.get(CALLBACK, {"code": query["code"][0], "state": query["state"][0]})
    assert replay.status_code == 400
    assert client.get(CALLBACK, {"code": query["code"][0]}).status_code == 400
    assert not Credential.objects.exists()


def test_denied_consent_is_a_friendly_page(
    ada: Any, client: Client, emulator: EmulatorClient
) -> None:
    response = client.get(f"{CALLBACK}?{consent(client, emulator, decision='deny')}")
    assert response.status_code == 200
    assert "Calendar access was not granted" in response.content.decode()
    assert not Credential.objects.exists()


def test_a_refused_code_saves_nothing(ada: Any, client: Client, emulator: EmulatorClient) -> None:
    query = parse_qs(consent(client, emulator))
    response = client.get(CALLBACK, {"code": "not-a-code", "state": query["state"][0]})
    assert response.status_code == 400
    assert "Google did not accept the connection" in response.content.decode()
    assert not Credential.objects.exists()


def test_google_down_during_the_exchange_is_502(
    ada: Any, client: Client, emulator: EmulatorClient
) -> None:
    query = consent(client, emulator)
    emulator.fail_next(1, kind="drop", path="/token")
    response = client.get(f"{CALLBACK}?{query}")
    assert response.status_code == 502
    assert "Google could not be reached" in response.content.decode()
    assert not Credential.objects.exists()


CALLBACK_URL = "http://testserver/calendar-cache/connect/google/callback/"


@pytest.mark.parametrize("who", ["staff", "debug"])
def test_staff_or_debug_see_how_to_configure_connecting(
    ada: Any, client: Client, settings: Any, who: str
) -> None:
    settings.CALCACHE_GOOGLE_CLIENT_ID = ""
    if who == "staff":
        client.force_login(UserFactory(is_staff=True))
    else:
        settings.DEBUG = True
    for url in (CONNECT, CALLBACK):
        response = client.get(url)
        assert response.status_code == 503
        assert "Connecting is not set up" in response.content.decode()
        assert "Try again" not in response.content.decode()
        hint = response.context["hint"]
        assert "CALCACHE_GOOGLE_CLIENT_ID" in hint and "CALCACHE_GOOGLE_CLIENT_SECRET" in hint
        assert CALLBACK_URL in hint
        assert 'id="operator-hint"' in response.content.decode()
    page = client.get(CALENDARS).content.decode()
    assert "not set up on this site" in page and 'id="operator-hint"' in page
    assert "CALCACHE_GOOGLE_CLIENT_ID" in page and 'href="/calendar-cache/connect/' not in page


def test_a_plain_user_sees_no_settings_or_callback_url(
    ada: Any, client: Client, settings: Any
) -> None:
    settings.CALCACHE_GOOGLE_CLIENT_ID = ""
    for url in (CONNECT, CALLBACK, CALENDARS):
        response = client.get(url)
        assert response.status_code == (200 if url == CALENDARS else 503)
        html = response.content.decode()
        assert "not set up" in html and "administrator" in html
        assert 'id="operator-hint"' not in html
        assert "CALCACHE_GOOGLE" not in html and CALLBACK_URL not in html
    assert 'href="/calendar-cache/connect/' not in html


def test_the_calendars_page_links_the_week(ada: Any, client: Client) -> None:
    html = client.get(CALENDARS).content.decode()
    assert '<a href="/calendar-cache/me/" id="week-link">' in html
    assert '<a href="/calendar-cache/me/" id="nav-week">' in html


@pytest.mark.parametrize("url", [CONNECT, CALLBACK, CALENDARS])
def test_login_required(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


def test_no_account_yet(ada: Any, client: Client) -> None:
    page = client.get(CALENDARS)
    assert page.status_code == 200
    assert "You have not connected a Google account yet." in page.content.decode()
    assert f'href="{CONNECT}"' in page.content.decode()


def test_deselect_keeps_the_rows_disabled_and_reselect_reenables_them(
    connected: Credential, client: Client
) -> None:
    save_selection(client, connected, ADA, WORK)
    rows = {row.calendar_id: row.pk for row in SelectedCalendar.objects.all()}
    assert enabled(connected) == {ADA: True, WORK: True}

    nothing = save_selection(client, connected)
    assert enabled(connected) == {ADA: False, WORK: False}
    assert f"No calendars of {ADA} are mirrored now." in nothing.content.decode()
    assert checked(nothing) == []

    save_selection(client, connected, WORK)
    assert enabled(connected) == {ADA: False, WORK: True}
    assert {row.calendar_id: row.pk for row in SelectedCalendar.objects.all()} == rows


def test_the_primary_alias_counts_as_the_primary_calendar(
    ada: Any, client: Client, emulator: EmulatorClient
) -> None:
    # Google unreachable while connecting: the "primary" alias was selected.
    emulator.fail_next(2, status=503, path="/calendarList")
    credential = connect_google_account(user=ada, token=emulator.authorized_token(ADA))
    assert enabled(credential) == {"primary": True}
    assert checked(client.get(CALENDARS)) == [ADA]
    save_selection(client, credential, WORK)
    assert enabled(credential) == {"primary": False, WORK: True}


def test_selection_needs_a_csrf_token(connected: Credential) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(connected.user)
    response = strict.post(CALENDARS, {"credential": connected.pk, "calendar": [WORK]})
    assert response.status_code == 403
    assert enabled(connected) == {ADA: True}


def test_another_users_account_is_not_found(connected: Credential) -> None:
    other = Client()
    other.force_login(UserFactory())
    response = other.post(CALENDARS, {"credential": connected.pk, "calendar": [WORK]})
    assert response.status_code == 404
    assert enabled(connected) == {ADA: True}


def test_a_calendar_not_in_the_list_changes_nothing(connected: Credential, client: Client) -> None:
    response = save_selection(client, connected, WORK, "someone-else@example.com")
    assert "nothing was changed" in response.content.decode()
    assert enabled(connected) == {ADA: True}


def test_a_revoked_account_shows_a_reconnect_link(
    connected: Credential, client: Client, emulator: EmulatorClient
) -> None:
    emulator.revoke(ADA)
    emulator.expire_access_tokens(ADA)
    page = client.get(CALENDARS)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Reconnect this account" in html
    assert f'href="{CONNECT}?account=ada%40example.com"' in html
    assert 'name="calendar"' not in html
    connected.refresh_from_db()
    assert connected.invalid
    # reconnecting clears the mark
    assert client.get(f"{CALLBACK}?{consent(client, emulator)}").status_code == 302
    connected.refresh_from_db()
    assert not connected.invalid
    assert 'name="calendar"' in client.get(CALENDARS).content.decode()


def test_a_refreshed_token_is_stored(
    connected: Credential, client: Client, emulator: EmulatorClient
) -> None:
    before = connected.token["token"]
    emulator.expire_access_tokens(ADA)
    assert client.get(CALENDARS).status_code == 200
    connected.refresh_from_db()
    assert connected.token["token"] != before
    assert not connected.invalid


def test_google_down_while_listing_keeps_the_page_up(
    connected: Credential, client: Client, emulator: EmulatorClient
) -> None:
    emulator.fail_next(2, status=503, path="/calendarList")
    page = client.get(CALENDARS)
    assert page.status_code == 200
    assert "Google could not be reached" in page.content.decode()
    assert f"Mirrored now: {ADA}." in page.content.decode()


@pytest.mark.usefixtures("webhooks_on")
def test_selecting_opens_a_push_channel_and_deselecting_stops_it(
    connected: Credential, client: Client, emulator: EmulatorClient
) -> None:
    emulator.clear_requests()
    save_selection(client, connected, ADA, WORK)
    channel = PushChannel.objects.get()
    assert channel.selected_calendar.calendar_id == WORK and channel.live
    watches = [r["path"] for r in emulator.requests() if r["path"].endswith("/events/watch")]
    assert len(watches) == 1 and WORK in watches[0]

    save_selection(client, connected, ADA)
    channel.refresh_from_db()
    assert channel.stopped_at is not None
    stops = [r for r in emulator.requests() if r["path"].endswith("/channels/stop")]
    assert len(stops) == 1 and stops[0]["status"] == 204
    assert enabled(connected) == {ADA: True, WORK: False}


@pytest.mark.usefixtures("webhooks_on")
def test_a_failed_watch_keeps_the_selection(
    connected: Credential, client: Client, emulator: EmulatorClient
) -> None:
    emulator.fail_next(1, status=400, reason="invalid", path="/events/watch")
    response = save_selection(client, connected, ADA, WORK)
    assert f"Saved. Mirroring for {ADA}:" in response.content.decode()
    assert enabled(connected) == {ADA: True, WORK: True}
    assert not PushChannel.objects.exists()


# --- malformed input: a friendly 400, nothing changed (issue 15) ------------------------------


@pytest.mark.parametrize(
    "credential",
    ["abc", "1.5", "", " ", "0", "-1", "1\x00", "²", "99999999999999999999999", "9" * 5000],
)
def test_a_malformed_credential_is_a_friendly_400_with_csrf(
    connected: Credential, credential: str
) -> None:
    # The reproducer: logged in, with a valid CSRF token, as a browser would send it.
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(connected.user)
    assert strict.get(CALENDARS).status_code == 200
    token = strict.cookies["csrftoken"].value
    response = strict.post(
        CALENDARS, {"csrfmiddlewaretoken": token, "credential": credential, "calendar": [WORK]}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "That selection could not be saved" in html and "Nothing was changed" in html
    assert enabled(connected) == {ADA: True}


@pytest.mark.parametrize(
    "calendar_ids",
    [[""], ["a\x00b"], [WORK, "x" * 256], [f"c{n}@example.com" for n in range(501)]],
    ids=["empty", "nul", "too-long", "too-many"],
)
def test_malformed_calendar_ids_are_a_friendly_400(
    connected: Credential, client: Client, calendar_ids: list[str]
) -> None:
    response = client.post(CALENDARS, {"credential": connected.pk, "calendar": calendar_ids})
    assert response.status_code == 400
    assert "That selection could not be saved" in response.content.decode()
    assert enabled(connected) == {ADA: True}


@pytest.mark.parametrize("account", ["ada\x00@example.com", "a" * 255 + "@example.com"])
def test_a_malformed_account_hint_is_a_friendly_400(ada: Any, client: Client, account: str) -> None:
    response = client.get(CONNECT, {"account": account})
    assert response.status_code == 400
    assert "That account is not valid" in response.content.decode()
    assert "calcache_google_oauth" not in client.session


@pytest.mark.parametrize("code", ["4/0A\x00", "c" * 2049])
def test_a_malformed_code_is_refused_before_asking_google(
    ada: Any, client: Client, emulator: EmulatorClient, code: str
) -> None:
    start = client.get(CONNECT)
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    emulator.clear_requests()
    response = client.get(CALLBACK, {"state": state, "code": code})
    assert response.status_code == 400
    assert "Nothing was saved" in response.content.decode()
    assert not [r for r in emulator.requests() if "token" in r.get("path", "")]
    assert not Credential.objects.filter(user=ada).exists()
