"""Run inside the minimal host: migrate, then call calcache's API under its prefix."""

import io
import json
import os
import sys

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.projects.minimal_host.settings"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

setup_test_environment()
call_command("migrate", verbosity=0)
call_command("check", fail_level="ERROR", stdout=io.StringIO())
client = Client()
url = reverse("calcache:availability")
anonymous = client.get(url, {"start": "2026-06-01T00:00:00Z"}, HTTP_ACCEPT="application/json")
client.force_login(get_user_model().objects.create_user("host-user"))
bad = client.get(url, {"start": "2026-06-01T00:00:00Z"})
empty = client.get(url, {"start": "2026-06-01T00:00:00Z", "end": "2026-06-02T00:00:00Z"})
json.dump(
    {
        "url": url,
        "anonymous": anonymous.status_code,
        "bad": [bad.status_code, bad.json()],
        "no_calendars": [empty.status_code, empty.json()],
    },
    sys.stdout,
)
