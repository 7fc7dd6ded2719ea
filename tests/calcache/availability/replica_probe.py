"""Run by test_streaming_replica.py in a process of its own, against a throwaway primary
(DATABASE_URL) and its streaming replica (DATABASE_REPLICA_URL, read through
CALCACHE_READ_DATABASE=replica). One action per run, its input JSON on stdin, its
answer JSON on stdout:

    setup  {"token": ..., "calendars": [...]}  a user with that Google account, both
           rollout flags on for everyone, a first sync -> {"user": id}
    sync   {}                                  sync_calendars -> {}
    read   {"user": id, "start": iso, "end": iso}
           get_availability -> {"source", "busy": [[iso, iso]...], "reason", "fallbacks"}
"""

import io
import json
import os
import sys
from datetime import datetime

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from calcache.availability.replica import router  # noqa: E402
from calcache.availability.stats import FALLBACK, stats  # noqa: E402
from calcache.conf import conf  # noqa: E402
from calcache.models import AvailabilityStat  # noqa: E402
from calcache.services import connect_google_account, get_availability  # noqa: E402
from flags.models import Flag  # noqa: E402
from flags.names import READ_FLAG, WRITE_FLAG  # noqa: E402

action, given = sys.argv[1], json.load(sys.stdin)
if action == "setup":
    user = get_user_model().objects.create_user("replica-reader", "reader@example.com")
    connect_google_account(user=user, token=given["token"], calendar_ids=given["calendars"])
    Flag.objects.filter(name__in=[READ_FLAG, WRITE_FLAG]).update(everyone=True)
    call_command("sync_calendars", stdout=io.StringIO())
    answer: dict[str, object] = {"user": user.pk}
elif action == "sync":
    call_command("sync_calendars", stdout=io.StringIO())
    answer = {}
elif action == "read":
    found = get_availability(
        user=given["user"],
        start=datetime.fromisoformat(given["start"]),
        end=datetime.fromisoformat(given["end"]),
    )
    stats.flush()  # to default, the primary
    counted = AvailabilityStat.objects.filter(source=FALLBACK)
    fallbacks = sum(counted.values_list("requests", flat=True))
    answer = {
        "source": found.source,
        "busy": [[begins.isoformat(), ends.isoformat()] for begins, ends in found.busy],
        "reason": router.verdict(conf.read_database).reason,
        "fallbacks": fallbacks,
    }
else:
    raise SystemExit(f"unknown action {action!r}")
json.dump(answer, sys.stdout)
