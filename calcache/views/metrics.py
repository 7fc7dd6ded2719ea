"""``GET metrics/``: the Prometheus exposition (docs/metrics.md).

Allowed for a signed-in user with ``calcache.view_dashboard`` (the dashboard's
permission: the same operators see the same figures) or for a request carrying
``Authorization: Bearer <CALCACHE_METRICS_TOKEN>``. Anonymous without a token: 401; a
wrong token, token access off, or a user without the permission: 403; without
prometheus-client: 501. All errors are JSON.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from calcache import metrics as calcache_metrics
from calcache.conf import conf
from calcache.views.api import error
from calcache.views.dashboard import DASHBOARD_PERMISSION
from calcache.views.outages import outage_json


def _refusal(request: HttpRequest) -> JsonResponse | None:
    """The 401/403 answer for a request that may not scrape, else None."""
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        expected = conf.metrics_token
        if not expected:
            return error(
                gettext("Token access to the metrics is off (CALCACHE_METRICS_TOKEN)."), 403
            )
        if not hmac.compare_digest(given.strip().encode(), expected.encode()):
            return error(gettext("Wrong metrics token."), 403)
        return None
    if not request.user.is_authenticated:
        response = error(
            gettext("Sign in with calcache.view_dashboard, or send Authorization: Bearer <token>."),
            401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="calcache metrics"'
        return response
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        return error(
            gettext("The metrics need the permission %(permission)s.")
            % {"permission": DASHBOARD_PERMISSION},
            403,
        )
    return None


@outage_json
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The exposition text of calcache's metrics, for Prometheus."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    if not calcache_metrics.available():
        return error(
            gettext("Metrics need prometheus-client: %(install)s, then restart the site.")
            % {"install": calcache_metrics.INSTALL_HINT},
            501,
        )
    if problem := calcache_metrics.multiprocess_dir_problem():
        return error(
            gettext("Metrics are off: %(problem)s (calcache.W011).") % {"problem": problem}, 503
        )
    from calcache.metrics.collectors import scrape

    body, content_type = scrape()
    return HttpResponse(body, content_type=content_type)
