"""Connecting a Google account (OAuth with PKCE) and picking the calendars to mirror.

``connect/google/`` sends the user to Google's consent page, ``connect/google/callback/``
stores the credential, ``calendars/`` shows and saves the selection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from calcache.accounts.connection import PRIMARY_CALENDAR_ID, connect_google_account
from calcache.accounts.selection import (
    CalendarChoice,
    account_calendars,
    calendar_choices,
    select_calendars,
)
from calcache.conf import conf
from calcache.exceptions import (
    CredentialInvalid,
    GoogleBadRequest,
    GoogleError,
    InvalidTokenData,
)
from calcache.google.oauth import exchange_code, start_authorization
from calcache.models import Credential, Provider
from calcache.views.outages import outage_page

logger = logging.getLogger("calcache.views.connect")

SESSION_KEY = "calcache_google_oauth"
MAX_ID = 2**63 - 1  # the largest primary key a BigAutoField holds
MAX_CALENDARS = 500
MAX_CALENDAR_ID_LENGTH = 255  # SelectedCalendar.calendar_id
MAX_LOGIN_HINT_LENGTH = 254  # an email address; Google's login_hint
MAX_CODE_LENGTH = 2048


def _callback_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("calcache:connect-google-callback"))


def _error_page(
    request: HttpRequest,
    title: str,
    message: str,
    *,
    status: int,
    retry: bool = True,
    hint: str = "",
) -> HttpResponse:
    return render(
        request,
        "calcache/connect_error.html",
        {"title": title, "message": message, "retry": retry, "hint": hint},
        status=status,
    )


def not_configured_hint(request: HttpRequest) -> str:
    """What the site's operator sets to make connecting work (shown where it is off), for
    staff or with DEBUG on; empty for everyone else, who should not see setting names and
    the callback URL of a production site."""
    if not (settings.DEBUG or getattr(request.user, "is_staff", False)):
        return ""
    return _(
        "To the site's operator: set CALCACHE_GOOGLE_CLIENT_ID and "
        "CALCACHE_GOOGLE_CLIENT_SECRET to an OAuth client from the Google Cloud console "
        "whose authorized redirect URIs include %(callback)s, then restart the site. "
        "For the bundled emulator, use its client id and secret and point "
        "CALCACHE_GOOGLE_AUTH_URI, CALCACHE_GOOGLE_TOKEN_URI and CALCACHE_GOOGLE_API_URL "
        "at it."
    ) % {"callback": _callback_uri(request)}


def _not_configured(request: HttpRequest) -> HttpResponse:
    return _error_page(
        request,
        _("Connecting is not set up"),
        _(
            "This site has no Google OAuth client configured yet, so calendars cannot be "
            "connected. Please tell the site's administrators."
        ),
        status=503,
        retry=False,
        hint=not_configured_hint(request),
    )


def _google_error_page(request: HttpRequest, exc: GoogleError) -> HttpResponse:
    logger.warning("Connecting a Google account failed: %s", exc)
    if isinstance(exc, CredentialInvalid | GoogleBadRequest):
        return _error_page(
            request,
            _("Google did not accept the connection"),
            _(
                "The sign-in could not be completed (it may have expired or been used "
                "already). Please try again."
            ),
            status=400,
        )
    # GoogleUnavailable, and rate or quota limits: Google's side, worth a retry later.
    return _error_page(
        request,
        _("Google could not be reached"),
        _("Google did not answer in time. Nothing was saved; please try again in a moment."),
        status=502,
    )


@outage_page
@login_required
@require_GET
def start(request: HttpRequest) -> HttpResponse:
    """Send the user to Google's consent page; ``?account=`` suggests which account."""
    if not conf.google_client_id:
        return _not_configured(request)
    login_hint = request.GET.get("account") or getattr(request.user, "email", "") or None
    if login_hint and (len(login_hint) > MAX_LOGIN_HINT_LENGTH or not login_hint.isprintable()):
        return _error_page(
            request,
            _("That account is not valid"),
            _(
                "The account in the address is not an email address Google could sign in. "
                "Please start connecting again."
            ),
            status=400,
        )
    authorization = start_authorization(redirect_uri=_callback_uri(request), login_hint=login_hint)
    request.session[SESSION_KEY] = {
        "state": authorization.state,
        "code_verifier": authorization.code_verifier,
    }
    return HttpResponseRedirect(authorization.url)


@outage_page
@login_required
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Google sends the user back here: check ``state``, trade the code, store the token."""
    if not conf.google_client_id:
        return _not_configured(request)
    pending = request.session.pop(SESSION_KEY, None) or {}
    state = request.GET.get("state", "")
    if not state or not constant_time_compare(state, pending.get("state") or ""):
        return _error_page(
            request,
            _("This sign-in link is not valid"),
            _(
                "The answer from Google does not match a sign-in started here, or it was "
                "already used. Nothing was saved; please start connecting again."
            ),
            status=400,
        )
    error = request.GET.get("error")
    if error == "access_denied":
        return _error_page(
            request,
            _("Calendar access was not granted"),
            _(
                "You chose not to share your calendars, so nothing was connected. "
                "You can connect whenever you like."
            ),
            status=200,
        )
    code = request.GET.get("code")
    if not error and code and (len(code) > MAX_CODE_LENGTH or not code.isprintable()):
        return _error_page(
            request,
            _("This sign-in link is not valid"),
            _(
                "The authorization code in the address is malformed, so Google was not "
                "asked. Nothing was saved; please start connecting again."
            ),
            status=400,
        )
    if error or not code:
        return _error_page(
            request,
            _("Google did not complete the sign-in"),
            _("Google answered: %(error)s. Nothing was saved; please try again.")
            % {"error": (error or _("no authorization code"))[:100]},
            status=400,
        )
    try:
        token = exchange_code(
            code=code,
            redirect_uri=_callback_uri(request),
            state=state,
            code_verifier=pending.get("code_verifier", ""),
        )
        credential = connect_google_account(user=request.user, token=token, calendar_ids=None)
    except GoogleError as exc:
        return _google_error_page(request, exc)
    except InvalidTokenData as exc:
        logger.warning("Google's token cannot be used for background sync: %s", exc)
        return _error_page(
            request,
            _("Google did not grant offline access"),
            _(
                "Google did not give this site lasting access to your calendars. "
                "Please try again and allow access."
            ),
            status=400,
        )
    account = credential.account_email or _("your Google account")
    messages.success(
        request,
        _("Connected %(account)s. Choose the calendars to mirror below.") % {"account": account},
    )
    return redirect("calcache:calendars")


@dataclass
class AccountView:
    """One connected account on the calendars page."""

    credential: Credential
    choices: list[CalendarChoice] = field(default_factory=list)
    needs_reconnect: bool = False
    error: str = ""

    @property
    def mirrored(self) -> list[str]:
        names = {c.calendar.id: c.calendar.summary for c in self.choices}
        primary = next((c.calendar.summary for c in self.choices if c.calendar.primary), None)
        if primary:
            names.setdefault(PRIMARY_CALENDAR_ID, primary)
        return [
            names.get(row.calendar_id, row.calendar_id)
            for row in self.credential.selected_calendars.all()
            if row.enabled
        ]


def _account_view(credential: Credential) -> AccountView:
    account = AccountView(credential=credential, needs_reconnect=credential.invalid)
    if credential.invalid:
        return account
    try:
        calendars = account_calendars(credential=credential)
    except CredentialInvalid:
        account.needs_reconnect = True
        return account
    except GoogleError as exc:
        logger.warning("calendarList of credential %s failed: %s", credential.pk, exc)
        account.error = _("Google could not be reached, so the calendar list is unavailable.")
        return account
    account.choices = calendar_choices(credential=credential, calendars_info=calendars)
    return account


def _credentials_of(user: Any) -> QuerySet[Credential]:
    return Credential.objects.filter(user=user, provider=Provider.GOOGLE).order_by(
        "account_email", "pk"
    )


class CalendarIdsField(forms.Field):
    """Every ``calendar`` value of the form: ids as Google spells them, each non-empty,
    without NUL and short enough for ``SelectedCalendar.calendar_id``."""

    widget = forms.MultipleHiddenInput  # reads all the values, not the last one

    def to_python(self, value: Any) -> list[str]:
        return [str(item) for item in value or []]

    def validate(self, value: list[str]) -> None:
        if len(value) > MAX_CALENDARS:
            raise forms.ValidationError(_("at most %(count)d calendars") % {"count": MAX_CALENDARS})
        for item in value:
            if not item.strip() or len(item) > MAX_CALENDAR_ID_LENGTH or "\x00" in item:
                raise forms.ValidationError(
                    _("%(id)s is not a calendar id") % {"id": repr(item[:64])}
                )


class SelectionForm(forms.Form):
    """The calendars page's POST: one connected account and the calendars to mirror."""

    credential = forms.IntegerField(min_value=1, max_value=MAX_ID)
    calendar = CalendarIdsField(required=False)


def _save_selection(request: HttpRequest) -> HttpResponse:
    form = SelectionForm(request.POST)
    if not form.is_valid():
        return _error_page(
            request,
            _("That selection could not be saved"),
            _(
                "The form that was sent is not one this site makes (the account or a "
                "calendar is not valid). Nothing was changed; please pick your calendars "
                "again."
            ),
            status=400,
            retry=False,
        )
    credential = get_object_or_404(
        _credentials_of(request.user), pk=form.cleaned_data["credential"]
    )
    name = credential.account_email or _("this account")
    try:
        calendars = account_calendars(credential=credential)
        change = select_calendars(
            credential=credential,
            calendar_ids=form.cleaned_data["calendar"],
            calendars_info=calendars,
        )
    except CredentialInvalid:
        messages.error(
            request,
            _("Google no longer accepts %(name)s: reconnect it to continue.") % {"name": name},
        )
    except GoogleError as exc:
        logger.warning("Saving the selection of credential %s failed: %s", credential.pk, exc)
        messages.error(request, _("Google could not be reached; nothing was changed. Try again."))
    except ValueError:
        messages.error(
            request, _("Your calendar list changed at Google; nothing was changed. Pick again.")
        )
    else:
        names = {c.id: c.summary for c in calendars}
        mirrored = [names[calendar_id] for calendar_id in change.mirrored]
        if mirrored:
            messages.success(
                request,
                _("Saved. Mirroring for %(name)s: %(calendars)s.")
                % {"name": name, "calendars": ", ".join(mirrored)},
            )
        else:
            messages.success(
                request, _("Saved. No calendars of %(name)s are mirrored now.") % {"name": name}
            )
    return redirect("calcache:calendars")


@outage_page
@login_required
@require_http_methods(["GET", "POST"])
def calendars(request: HttpRequest) -> HttpResponse:
    """Each connected account's calendars, with a checkbox per calendar to mirror it."""
    if request.method == "POST":
        return _save_selection(request)
    credentials = _credentials_of(request.user).prefetch_related("selected_calendars")
    context: dict[str, Any] = {
        "accounts": [_account_view(credential) for credential in credentials],
        "can_connect": bool(conf.google_client_id),
        "not_configured_hint": "" if conf.google_client_id else not_configured_hint(request),
    }
    return render(request, "calcache/calendars.html", context)
