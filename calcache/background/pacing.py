"""Per-Google-account pacing of background syncs, shared by every worker.

Google's Calendar quota is counted per user (per connected account) per minute. A burst of
one account's calendars (a webhook storm, a sweep after an outage) must not spend it all
and turn every later call into 403 rateLimitExceeded. Two things pace it, both kept in
Django's default cache so that all workers see them (configure a shared cache, e.g.
Redis, with ``CACHE_URL``; a per-process cache paces each process on its own):

- a budget of ``CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE`` sync starts per account per
  clock minute;
- a cool-down: once Google answered an account with a rate limit, its other syncs wait
  for as long as Google asked instead of trying and failing one by one.
"""

from __future__ import annotations

import time

from django.core.cache import cache

from calcache.conf import conf

WINDOW_SECONDS = 60
_PREFIX = "calcache:credential-pace"


def _now() -> float:
    return time.time()


def seconds_until_allowed(credential_id: int, *, now: float | None = None) -> float:
    """Take one sync start from the account's budget: 0.0 when it may start now, otherwise
    how long to wait (a start that must wait does not spend the budget). ``now``: a Unix
    time, for tests."""
    cooling = cache.get(f"{_PREFIX}:cool:{credential_id}")
    now = _now() if now is None else now
    if cooling is not None and float(cooling) > now:
        return float(cooling) - now
    limit = conf.credential_syncs_per_minute
    if limit <= 0:
        return 0.0
    window = int(now // WINDOW_SECONDS)
    key = f"{_PREFIX}:count:{credential_id}:{window}"
    cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
    try:
        started = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=WINDOW_SECONDS * 2)
        started = 1
    if started <= limit:
        return 0.0
    cache.decr(key)
    return (window + 1) * WINDOW_SECONDS - now


def cool_down(credential_id: int, seconds: float) -> None:
    """Hold back the account's syncs for ``seconds`` (Google said it is rate limited)."""
    if seconds <= 0:
        return
    until = _now() + seconds
    key = f"{_PREFIX}:cool:{credential_id}"
    current = cache.get(key)
    if current is None or float(current) < until:
        cache.set(key, until, timeout=int(seconds) + 1)
