"""Settings of the site ``make bench`` serves with gunicorn: calcache's host project
(project.settings, from the same environment) with bench/http_urls.py as its URLs, which
add a trivial view beside calcache's. Only the bench uses it."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.http_urls"
