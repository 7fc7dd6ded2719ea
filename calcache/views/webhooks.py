"""``POST webhooks/google/``: Google's push notifications.

Answers: malformed headers 400, a wrong or missing channel token 403, everything else
200 with ``{"status": ...}`` (``calcache.push.notifications.Outcome``).
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calcache.push.notifications import InvalidNotification, Outcome, handle_notification
from calcache.views.outages import outage_json


# Outside ATOMIC_REQUESTS: the refresh is submitted while the request runs, right after
# the calendar's mark is committed, so the answer can say whether the runner took it.
@transaction.non_atomic_requests
@csrf_exempt
@require_POST
@outage_json
def google_webhook(request: HttpRequest) -> HttpResponse:
    try:
        outcome = handle_notification(request.headers)
    except InvalidNotification as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    if outcome == Outcome.FORBIDDEN:
        return JsonResponse({"error": "Missing or wrong X-Goog-Channel-Token."}, status=403)
    return JsonResponse({"status": outcome.value})
