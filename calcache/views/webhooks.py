"""``POST webhooks/google/``: Google's push notifications."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calcache.push.notifications import Outcome, handle_notification


@csrf_exempt
@require_POST
def google_webhook(request: HttpRequest) -> HttpResponse:
    outcome = handle_notification(request.headers)
    if outcome == Outcome.FORBIDDEN:
        return JsonResponse({"error": "Missing or wrong X-Goog-Channel-Token."}, status=403)
    return JsonResponse({"status": outcome.value})
