"""Run by tests/calcache/test_outages.py in a process of its own, with DATABASE_URL
naming the throwaway cluster: a superuser whose emulator account's calendars are
selected, the write flag on for everyone, and a session for that user.

Reads ``{"token": <authorized-user token>, "calendars": [ids]}`` on stdin; prints
``{"session": <session key>, "user": <id>}``.
"""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402

from calcache.services import connect_google_account  # noqa: E402
from flags.models import Flag  # noqa: E402
from flags.names import WRITE_FLAG  # noqa: E402

given = json.load(sys.stdin)
user = get_user_model().objects.create_superuser("oncall", "oncall@example.com", None)
connect_google_account(user=user, token=given["token"], calendar_ids=given["calendars"])
Flag.objects.filter(name=WRITE_FLAG).update(everyone=True)
client = Client()
client.force_login(user)
json.dump(
    {"session": client.cookies[settings.SESSION_COOKIE_NAME].value, "user": user.pk}, sys.stdout
)
