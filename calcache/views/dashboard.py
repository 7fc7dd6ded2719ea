"""The staff dashboard: rollout stage, who is in each flag, coverage, sync health,
mismatch rate, and SQL vs JSON vs live latency as server-rendered SVG charts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from calcache.availability.stats import stats
from calcache.rollout.monitoring import (
    SyncHealth,
    calendar_health_list,
    flag_members_list,
    latency_series_list,
    mismatch_series_get,
)
from calcache.rollout.stages import STAGE_NAMES, rollout_status
from calcache.views.charts import line_chart
from calcache.views.outages import outage_page
from flags.names import READ_FLAG, WRITE_FLAG

CHART_HOURS = 24
# Superusers have it implicitly; operators grant it to users or groups in the admin.
DASHBOARD_PERMISSION = "calcache.view_dashboard"


# The sync health states of calcache.rollout.monitoring.CalendarHealth, as shown.
STATE_LABELS = {
    "invalid credential": gettext_lazy("invalid credential"),
    "failing": gettext_lazy("failing"),
    "never synced": gettext_lazy("never synced"),
    "ok": gettext_lazy("ok"),
    "disabled": gettext_lazy("disabled"),
}


def percent_label(value: Decimal | None) -> str:
    """``25.000`` as ``25%``, ``12.500`` as ``12.5%``; no percentage as ``none``."""
    return _("none") if value is None else f"{value.normalize():f}%"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def latency_comparison(*, sql_ms: float | None, json_ms: float | None) -> str:
    """One sentence on the SQL and JSON mean latencies and which source is faster, by how
    much; says so when either has no answers to measure."""
    if sql_ms is None and json_ms is None:
        return _(
            "No SQL or JSON answers in the last 24 hours, so their speed cannot be compared yet."
        )
    if json_ms is None:
        assert sql_ms is not None
        return _(
            "SQL answers in %(sql)s ms on average; there are no JSON answers in the last "
            "24 hours to compare with."
        ) % {"sql": _ms(sql_ms)}
    if sql_ms is None:
        return _(
            "JSON answers in %(json)s ms on average; there are no SQL answers in the last "
            "24 hours to compare with."
        ) % {"json": _ms(json_ms)}
    values = {"sql": _ms(sql_ms), "json": _ms(json_ms)}
    if sql_ms <= 0 or json_ms <= 0 or max(sql_ms, json_ms) / min(sql_ms, json_ms) < 1.05:
        return (
            _("SQL answers in %(sql)s ms on average, JSON in %(json)s ms: about as fast.") % values
        )
    if sql_ms < json_ms:
        return _(
            "SQL answers in %(sql)s ms on average, JSON in %(json)s ms: SQL is %(factor)sx faster."
        ) % {**values, "factor": f"{json_ms / sql_ms:.1f}"}
    return _(
        "SQL answers in %(sql)s ms on average, JSON in %(json)s ms: SQL is %(factor)sx slower."
    ) % {**values, "factor": f"{sql_ms / json_ms:.1f}"}


def _health_context(health: SyncHealth) -> dict[str, object]:
    return {
        "health": health,
        "health_counts": [
            (state, STATE_LABELS.get(state, state), count) for state, count in health.counts.items()
        ],
        "health_rows": [(row, STATE_LABELS.get(row.state, row.state)) for row in health.calendars],
    }


def forbidden(request: HttpRequest) -> HttpResponse:
    """The styled 403 for signed-in users without ``calcache.view_dashboard``."""
    # the username comes from here: a host site may have no auth context processor
    context = {"username": request.user.get_username()}
    return render(request, "calcache/forbidden.html", context, status=403)


@outage_page
@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        return forbidden(request)
    stats.flush()  # counters not yet written would be missing from the charts
    now = timezone.now()
    since = now - timedelta(hours=CHART_HOURS)
    status = rollout_status(now=now)
    members = {m.name: m for m in flag_members_list(names=[WRITE_FLAG, READ_FLAG])}
    latency = latency_series_list(since=since, now=now)
    mismatches = mismatch_series_get(since=since, now=now)

    def chart(series_name: str, title: str, unit: str, sources: tuple[str, ...] = ()) -> str:
        series = latency[series_name]
        lines = {k: v for k, v in series.lines.items() if not sources or k in sources}
        return line_chart(series=lines, title=title, unit=unit, start=series.start, end=series.end)

    context = {
        **_health_context(calendar_health_list(now=now)),
        "latency_comparison": latency_comparison(
            sql_ms=status.sql_mean_ms, json_ms=status.json_mean_ms
        ),
        "status": status,
        "stage_names": sorted(STAGE_NAMES.items()),
        "flags": [
            (summary, members.get(summary.name), percent_label(summary.percent))
            for summary in (status.write, status.read)
        ],
        "chart_hours": CHART_HOURS,
        "bucket_minutes": int(latency["mean"].bucket.total_seconds() // 60),
        "charts": [
            chart("mean", _("Mean latency by source"), "ms"),
            # live answers take ~100x longer and flatten SQL and JSON on the chart above
            chart("mean", _("Mean latency, SQL vs JSON"), "ms", sources=("sql", "json")),
            chart("requests", _("Answers by source"), _("requests")),
            chart("errors", _("Errors by source"), _("errors")),
            line_chart(
                series=mismatches.lines,
                title=_("Shadow comparisons that disagreed"),
                unit="%",
                start=mismatches.start,
                end=mismatches.end,
            ),
        ],
    }
    return render(request, "calcache/dashboard.html", context)
