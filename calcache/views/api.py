"""The availability API: ``GET availability/?start=&end=[&user=]``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET

from calcache.conf import conf
from calcache.exceptions import GoogleError
from calcache.services import get_availability

MAX_RANGE = timedelta(days=92)


class BadParameter(ValueError):
    pass


def error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def wants_json(request: HttpRequest) -> bool:
    return request.headers.get(
        "x-requested-with"
    ) == "XMLHttpRequest" or "application/json" in request.headers.get("accept", "")


def parse_instant(request: HttpRequest, name: str) -> datetime:
    raw = request.GET.get(name)
    if raw is None or not raw.strip():
        raise BadParameter(f"'{name}' is required: an ISO 8601 date-time with an offset or Z.")
    try:
        value = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError:
        raise BadParameter(
            f"'{name}' is not an ISO 8601 date-time: {raw[:64]!r} (example: 2026-06-01T09:00:00Z)."
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadParameter(f"'{name}' has no time zone offset: add Z or +hh:mm.")
    return value


def _target_user(request: HttpRequest) -> Any:
    raw = request.GET.get("user")
    if raw is None or str(raw) == str(request.user.pk):
        return request.user
    User = get_user_model()
    try:
        target = User._default_manager.get(pk=raw)
    except (User.DoesNotExist, ValueError, TypeError):
        target = None
    allowed = (
        bool(conf.availability_permission)
        and target is not None
        and bool(import_string(conf.availability_permission)(request, target))
    )
    if not allowed:
        # Same answer for "no such user" and "not yours": no probing for user ids.
        raise PermissionError("'user': you may only see your own availability.")
    return target


@require_GET
def availability(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        if wants_json(request):
            return error("Authentication required.", status=401)
        return redirect_to_login(request.get_full_path())
    try:
        start = parse_instant(request, "start")
        end = parse_instant(request, "end")
        if end <= start:
            raise BadParameter("'end' must be after 'start'.")
        if end - start > MAX_RANGE:
            raise BadParameter(f"'end' is more than {MAX_RANGE.days} days after 'start'.")
        user = _target_user(request)
    except BadParameter as exc:
        return error(str(exc))
    except PermissionError as exc:
        return error(str(exc), status=403)
    try:
        result = get_availability(user=user, start=start, end=end)
    except GoogleError:
        return error("Calendar data is unavailable right now; try again shortly.", status=503)
    return JsonResponse(
        {
            "busy": [{"start": s.isoformat(), "end": e.isoformat()} for s, e in result.busy],
            "source": result.source,
        }
    )
