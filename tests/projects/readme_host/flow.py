"""Run inside a brand-new host project's own venv (tests/test_readme_install.py): what a
signed-in person does there, through Django's test client and the emulator over HTTP.

    python flow.py connect EMAIL   # the OAuth connect flow through the emulator's consent page
    python flow.py read EMAIL      # the availability API and the week page

Prints one JSON object. Imports nothing from calcache's repository: only Django, the
installed calcache wheel and the standard library.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

setup_test_environment()  # the test client's host name, "testserver", is allowed


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def signed_in(email: str) -> Client:
    user, _ = get_user_model().objects.get_or_create(
        username=email.split("@")[0], defaults={"email": email}
    )
    client = Client()
    client.force_login(user)
    return client


def connect(email: str) -> dict[str, Any]:
    client = signed_in(email)
    start = client.get("/calendar-cache/connect/google/")
    consent_url = start["Location"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(consent_url).query))
    with urllib.request.urlopen(consent_url, timeout=30) as page:
        consent_page = page.status
    form = urllib.parse.urlencode({**query, "email": email, "decision": "allow"}).encode()
    opener = urllib.request.build_opener(NoRedirects)
    try:
        opener.open(consent_url.split("?")[0], data=form, timeout=30)
        raise SystemExit("the consent page did not redirect back")
    except urllib.error.HTTPError as redirect:
        back = redirect.headers["Location"]
    callback = client.get(
        urllib.parse.urlsplit(back).path + "?" + urllib.parse.urlsplit(back).query
    )
    calendars = client.get(callback["Location"]) if callback.status_code == 302 else callback
    return {
        "start": start.status_code,
        "consent_url": consent_url,
        "consent_page": consent_page,
        "callback": callback.status_code,
        "callback_location": callback.get("Location", ""),
        "calendars": calendars.status_code,
        "calendars_html": calendars.content.decode(),
    }


def read(email: str) -> dict[str, Any]:
    client = signed_in(email)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    params = {"start": now.isoformat(), "end": (now + timedelta(days=7)).isoformat()}
    api = client.get("/calendar-cache/availability/", params)
    week = client.get("/calendar-cache/me/")
    return {
        "api": api.status_code,
        "api_body": api.json()
        if api.get("Content-Type", "").startswith("application/json")
        else None,
        "week": week.status_code,
        "week_html": week.content.decode(),
    }


if __name__ == "__main__":
    action, email = sys.argv[1], sys.argv[2]
    print(json.dumps({"connect": connect, "read": read}[action](email)))
