"""The availability API: ``GET availability/?start=&end=[&user=ID | &users=ID,... | &team=SLUG]``.

Malformed input is answered 400 before any permission is asked or any work is done;
another user's availability needs ``CALCACHE_AVAILABILITY_PERMISSION`` (403 for the
whole request, the same whether the user exists or not).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from calcache.availability.answer import Availability, check_window
from calcache.conf import conf
from calcache.exceptions import CalcacheError, GoogleError
from calcache.intervals import Interval, merge_intervals
from calcache.services import get_availability_for_users
from calcache.views.outages import google_unavailable_json, outage_json, unavailable_json
from flags.models import Team

logger = logging.getLogger("calcache")

MAX_RANGE = timedelta(days=92)
MAX_ID_LENGTH = 20
MAX_ID = 2**63 - 1  # the largest primary key a BigAutoField holds
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")  # flags.Team.slug


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
        raise BadParameter(
            _("'%(name)s' is required: an ISO 8601 date-time with an offset or Z.") % {"name": name}
        )
    text = raw.strip().replace(" ", "+")
    try:
        # fromisoformat stops reading at a NUL, so "...Z\x00" would parse: refuse it first
        if not (text.isascii() and text.isprintable()):
            raise ValueError(text)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadParameter(
            _("'%(name)s' is not an ISO 8601 date-time: %(raw)s (example: 2026-06-01T09:00:00Z).")
            % {"name": name, "raw": repr(raw[:64])}
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise BadParameter(
            _("'%(name)s' has no time zone offset: add Z or +hh:mm.") % {"name": name}
        )
    return value


def parse_window(request: HttpRequest) -> tuple[datetime, datetime]:
    start = parse_instant(request, "start")
    end = parse_instant(request, "end")
    try:
        start, end = check_window(start, end)
    except ValueError as exc:
        if "after" in str(exc):
            raise BadParameter(_("'end' must be after 'start'.")) from None
        raise BadParameter(_("'start' and 'end': %(reason)s.") % {"reason": exc}) from None
    if end - start > MAX_RANGE:
        raise BadParameter(
            _("'end' is more than %(days)d days after 'start'.") % {"days": MAX_RANGE.days}
        )
    return start, end


def _user_id(raw: str, name: str) -> int:
    value = raw.strip()
    # isascii: str.isdigit() also holds for digits int() refuses, such as "²"
    digits = value.isascii() and value.isdigit() and len(value) <= MAX_ID_LENGTH
    if not digits or int(value) > MAX_ID:
        raise BadParameter(
            _("'%(name)s': %(raw)s is not a user id.") % {"name": name, "raw": repr(raw[:32])}
        )
    return int(value)


def parse_targets(request: HttpRequest) -> tuple[list[Any] | None, str]:
    """The user ids asked about (None: the requester alone), and the parameter that named
    them."""
    given = [name for name in ("user", "users", "team") if name in request.GET]
    if len(given) > 1:
        raise BadParameter(
            _("Give only one of 'user', 'users', 'team' (got %(given)s).")
            % {"given": ", ".join(given)}
        )
    if not given:
        return None, ""
    if given[0] == "user":
        return [_user_id(request.GET["user"], "user")], "user"
    if given[0] == "users":
        parts = [part for part in request.GET["users"].split(",") if part.strip()]
        if not parts:
            raise BadParameter(_("'users' is empty: give user ids separated by commas."))
        if len(parts) > conf.availability_max_users * 2:
            raise BadParameter(
                _("'users': at most %(count)d users.") % {"count": conf.availability_max_users}
            )
        ids = list(dict.fromkeys(_user_id(part, "users") for part in parts))
        return _capped(ids), "users"
    slug = request.GET["team"].strip()
    # Only a well-formed slug reaches the database (PostgreSQL refuses NUL in text).
    team = Team.objects.filter(slug=slug).first() if SLUG.fullmatch(slug) else None
    if team is None:
        raise BadParameter(_("'team': no team %(slug)s.") % {"slug": repr(slug[:64])})
    members = list(team.members.order_by("pk").values_list("pk", flat=True))
    return _capped(members), "team"


def _capped(ids: list[Any]) -> list[Any]:
    if len(ids) > conf.availability_max_users:
        raise BadParameter(
            _("%(asked)d users asked about; at most %(count)d (CALCACHE_AVAILABILITY_MAX_USERS).")
            % {"asked": len(ids), "count": conf.availability_max_users}
        )
    return ids


class PermissionHookBroken(CalcacheError):
    """CALCACHE_AVAILABILITY_PERMISSION does not import or is not callable
    (``calcache.E014`` says so at start-up; a server started without checks meets it here)."""


def _permission_hook() -> Any:
    try:
        return conf.availability_permission_hook()
    except Exception as exc:  # it does not import, fails as it imports, or is not callable
        raise PermissionHookBroken(conf.availability_permission) from exc


def allowed_users(request: HttpRequest, user_ids: list[Any], *, asked_by: str) -> list[Any]:
    """The users, each allowed by the host site's permission (the requester always is)."""
    others = [user_id for user_id in user_ids if str(user_id) != str(request.user.pk)]
    if not others:
        return user_ids
    User = get_user_model()
    found = User._default_manager.in_bulk(others)
    check = _permission_hook()
    for user_id in others:
        target = found.get(user_id)
        if check is None or target is None or not check(request, target):
            # Same answer for "no such user" and "not yours": no probing for user ids.
            raise PermissionError(
                _("'%(name)s': you may only see your own availability.") % {"name": asked_by}
            )
    return user_ids


def _busy_json(busy: list[Interval]) -> list[dict[str, str]]:
    return [{"start": s.isoformat(), "end": e.isoformat()} for s, e in busy]


def _one(answer: Availability) -> dict[str, Any]:
    return {"busy": _busy_json(answer.busy), "source": answer.source}


@outage_json
@require_GET
def availability(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        if wants_json(request):
            return error(_("Authentication required."), status=401)
        return redirect_to_login(request.get_full_path())
    try:
        start, end = parse_window(request)
        targets, asked_by = parse_targets(request)
        if targets is None:
            user_ids = [request.user.pk]
        else:
            user_ids = allowed_users(request, targets, asked_by=asked_by)
    except BadParameter as exc:
        return error(str(exc))
    except PermissionError as exc:
        return error(str(exc), status=403)
    except PermissionHookBroken:
        logger.exception("CALCACHE_AVAILABILITY_PERMISSION cannot be used (calcache.E014)")
        return unavailable_json(
            _(
                "Availability of other users cannot be checked now: the site's permission "
                "hook is misconfigured."
            )
        )
    try:
        answers = get_availability_for_users(users=user_ids, start=start, end=end)
    except GoogleError as exc:  # 429 for a spent live budget, else 503; with Retry-After
        return google_unavailable_json(exc)
    if targets is None or asked_by == "user":
        return JsonResponse(_one(answers[user_ids[0]]))
    union = merge_intervals(
        (interval for answer in answers.values() for interval in answer.busy), start=start, end=end
    )
    return JsonResponse(
        {
            "users": {str(user_id): _one(answer) for user_id, answer in answers.items()},
            "busy": _busy_json(union),
        }
    )
