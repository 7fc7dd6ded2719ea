"""Mount with ``path("calendar-cache/", include("calcache.urls"))``."""

from django.urls import path

from calcache.views import api, webhooks

app_name = "calcache"

urlpatterns = [
    path("availability/", api.availability, name="availability"),
    path("webhooks/google/", webhooks.google_webhook, name="google-webhook"),
]
