"""Each user's budget of live Google reads a minute (``CALCACHE_LIVE_CALLS_PER_MINUTE``).

A live read made for a request spends the budget of the user whose availability is
read, so no one can turn far-away windows into unbounded freeBusy calls (and spend the
project's quota). The counts live in Django's default cache, shared by every process
when the cache is (Redis, ``CACHE_URL``); answers from SQL or the JSON cache cost
nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from django.core.cache import cache

from calcache.conf import conf

WINDOW_SECONDS = 60
_PREFIX = "calcache:live-budget"


def spend(calls: Mapping[Any, int], *, now: float | None = None) -> float:
    """Take ``calls[user_id]`` live reads from each user's budget of this minute, all or
    none: 0.0 when every user had room (and it is spent), else the seconds until the
    next minute, when the users over budget have room again (nothing is spent)."""
    limit = conf.live_calls_per_minute
    wanted = {user_id: n for user_id, n in calls.items() if n > 0}
    if limit <= 0 or not wanted:
        return 0.0
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    taken: list[tuple[str, int]] = []
    over = False
    for user_id, n in wanted.items():
        key = f"{_PREFIX}:{user_id}:{window}"
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        try:
            count = cache.incr(key, n)
        except ValueError:  # evicted between add and incr
            cache.set(key, n, timeout=WINDOW_SECONDS * 2)
            count = n
        taken.append((key, n))
        if count > limit:
            over = True
            break
    if not over:
        return 0.0
    for key, n in taken:
        with contextlib.suppress(ValueError):  # evicted meanwhile: nothing to give back
            cache.decr(key, n)
    return max(1.0, (window + 1) * WINDOW_SECONDS - now)
