"""Run by test_multiprocess.py as a process of its own (like one gunicorn worker), with
PROMETHEUS_MULTIPROC_DIR set and an in-memory SQLite database: connects the emulator
account given as JSON in its argument, syncs it and answers one availability request, then
prints what happened as JSON."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402
from prometheus_client import Counter  # noqa: E402

from calcache.models import SelectedCalendar  # noqa: E402
from calcache.services import connect_google_account, get_availability  # noqa: E402
from calcache.sync.engine import sync_calendar  # noqa: E402
from flags.models import Flag  # noqa: E402
from flags.names import WRITE_FLAG  # noqa: E402


def main() -> None:
    given = json.loads(sys.argv[1])
    # the host's own metric in the same process: it lands in the same multiprocess files
    Counter("host_secret_requests", "A host site's own counter.").inc()
    call_command("migrate", verbosity=0)
    flag = Flag.objects.get(name=WRITE_FLAG)
    flag.everyone = True
    flag.save()
    user = get_user_model().objects.create(username=given["email"])
    connect_google_account(user=user, token=given["token"])
    result = sync_calendar(SelectedCalendar.objects.get())
    now = timezone.now()
    answer = get_availability(user=user, start=now, end=now + timedelta(days=1))
    json.dump(
        {
            "outcome": result.outcome.name.lower(),
            "written": result.upserted,
            "source": answer.source,
        },
        sys.stdout,
    )


main()
