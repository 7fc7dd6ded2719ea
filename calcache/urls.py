"""Mount with ``path("calendar-cache/", include("calcache.urls"))``."""

from django.urls import path

from calcache.views import api, connect, dashboard, me, metrics, webhooks

app_name = "calcache"

urlpatterns = [
    path("availability/", api.availability, name="availability"),
    path("webhooks/google/", webhooks.google_webhook, name="google-webhook"),
    path("me/", me.week, name="me"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("connect/google/", connect.start, name="connect-google"),
    path("connect/google/callback/", connect.callback, name="connect-google-callback"),
    path("calendars/", connect.calendars, name="calendars"),
    path("metrics/", metrics.metrics, name="metrics"),
]
