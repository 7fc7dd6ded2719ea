"""Reading what calcache's management commands print."""

from __future__ import annotations

import re


def sync_summary(out: str) -> dict[str, int]:
    """``sync_calendars``' summary table as {label: number}."""
    rows = re.findall(r"^  (\S.*?)\s{2,}(\d+)$", out, flags=re.MULTILINE)
    return {label: int(value) for label, value in rows}
