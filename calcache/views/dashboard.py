"""The staff dashboard: rollout stage, who is in each flag, coverage, sync health,
mismatch rate, and SQL vs JSON vs live latency as server-rendered SVG charts."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from calcache.availability.stats import stats
from calcache.rollout.monitoring import (
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


def percent_label(value: Decimal | None) -> str:
    """``25.000`` as ``25%``, ``12.500`` as ``12.5%``; no percentage as ``none``."""
    return "none" if value is None else f"{value.normalize():f}%"


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
        "status": status,
        "stage_names": sorted(STAGE_NAMES.items()),
        "flags": [
            (summary, members.get(summary.name), percent_label(summary.percent))
            for summary in (status.write, status.read)
        ],
        "health": calendar_health_list(now=now),
        "chart_hours": CHART_HOURS,
        "bucket_minutes": int(latency["mean"].bucket.total_seconds() // 60),
        "charts": [
            chart("mean", "Mean latency by source", "ms"),
            # live answers take ~100x longer and flatten SQL and JSON on the chart above
            chart("mean", "Mean latency, SQL vs JSON", "ms", sources=("sql", "json")),
            chart("requests", "Answers by source", "requests"),
            chart("errors", "Errors by source", "errors"),
            line_chart(
                series=mismatches.lines,
                title="Shadow comparisons that disagreed",
                unit="%",
                start=mismatches.start,
                end=mismatches.end,
            ),
        ],
    }
    return render(request, "calcache/dashboard.html", context)
