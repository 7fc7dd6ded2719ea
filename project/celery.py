"""The Celery application of calcache's host project (the standard Django integration).

    celery -A project worker -Q calcache --concurrency 4 --loglevel INFO
    celery -A project beat --loglevel INFO

Its configuration is the ``CELERY_*`` part of project/settings.py; with no
``CELERY_BROKER_URL`` nothing is ever sent to a broker and all work runs in-process.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
