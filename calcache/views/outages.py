"""What a view answers while the database or Google is down: 503 with ``Retry-After``.

``@outage_json`` (the availability API, the webhook) answers ``{"error": ...}``;
``@outage_page`` (the HTML pages) a friendly page. Put either outermost, above
``login_required``: with the database down, the session lookup that decides whether
someone is logged in is the first query to fail. The page is rendered without the
request, so neither it nor the base template touches the session or the user.

Only errors that mean "unavailable" are answered this way: ``OperationalError`` (the
server is gone, refuses connections, was restarted, or SQLite is locked),
``InterfaceError`` (the connection was closed under us) and ``GoogleError``. Other
database errors are bugs and stay 500s.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from calcache.exceptions import GoogleError, LiveBudgetExceeded
from calcache.sync.engine import DATABASE_OUTAGE, first_line

logger = logging.getLogger("calcache.views")

# Seconds a client should wait before trying again, when the outage does not say.
RETRY_AFTER_SECONDS = 30

View = Callable[..., HttpResponse]


def retry_after(exc: BaseException | None = None) -> int:
    """Google's own ``Retry-After`` when it sent one, else ``RETRY_AFTER_SECONDS``."""
    seconds = getattr(exc, "retry_after", None)
    return max(1, math.ceil(seconds)) if seconds else RETRY_AFTER_SECONDS


def unavailable_json(message: str, *, seconds: int = RETRY_AFTER_SECONDS) -> JsonResponse:
    """``503 {"error": message}`` with ``Retry-After``."""
    response = JsonResponse({"error": message}, status=503)
    response["Retry-After"] = str(seconds)
    return response


def google_unavailable_json(exc: GoogleError) -> JsonResponse:
    """The API's answer when Google failed or timed out on the live path (503), or the
    live budget is spent (429); both with ``Retry-After``."""
    if isinstance(exc, LiveBudgetExceeded):
        response = JsonResponse(
            {"error": _("Too many live calendar reads; try again shortly.")}, status=429
        )
        response["Retry-After"] = str(math.ceil(exc.retry_after or 60))
        return response
    return unavailable_json(
        _("Calendar data is unavailable right now (Google did not answer); try again shortly."),
        seconds=retry_after(exc),
    )


def database_unavailable_json() -> JsonResponse:
    return unavailable_json(_("The calendar cache's database is unavailable; try again shortly."))


def unavailable_page(request: HttpRequest, *, google: bool) -> HttpResponse:
    """The friendly 503 page. Rendered without the request: no session, no user."""
    if google:
        message = _(
            "Google Calendar is not answering, so this page cannot be shown right now. "
            "Nothing was lost; please try again in a minute."
        )
    else:
        message = _(
            "Our database is not answering, so this page cannot be shown right now. "
            "Nothing was lost; please try again in a minute."
        )
    body = render_to_string(
        "calcache/unavailable.html",
        {
            "title": _("Calendars are unavailable for a moment"),
            "message": message,
            "retry_url": request.get_full_path(),
        },
    )
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _log(request: HttpRequest, exc: BaseException) -> None:
    logger.warning("%s %s answered 503: %s", request.method, request.path, first_line(exc))


def outage_json(view: View) -> View:
    """Answer database and Google outages with JSON 503 and ``Retry-After``."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except DATABASE_OUTAGE as exc:
            _log(request, exc)
            return database_unavailable_json()
        except GoogleError as exc:
            _log(request, exc)
            return google_unavailable_json(exc)

    return wrapper


def outage_page(view: View) -> View:
    """Answer database and Google outages with the friendly 503 page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except DATABASE_OUTAGE as exc:
            _log(request, exc)
            return unavailable_page(request, google=False)
        except GoogleError as exc:
            _log(request, exc)
            return unavailable_page(request, google=True)

    return wrapper
