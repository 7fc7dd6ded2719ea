"""Flag answers kept in this process for a moment, so the hot path asks no cache.

waffle keeps flags, switches and memberships in Django's cache (shared by every process
when the cache is); each read of it still costs a round trip, or a copy out of a
local-memory cache. ``memo`` keeps what those reads returned for ``MEMO_SECONDS``: a
change made in this process clears it at once (the flags' and switches' own flushes,
the membership signals), a change made in another process is seen at most
``MEMO_SECONDS`` later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

MEMO_SECONDS = 1.0


class Memo:
    def __init__(self, seconds: float = MEMO_SECONDS) -> None:
        self.seconds = seconds
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """``load()``'s value for ``key``, as loaded at most ``seconds`` ago."""
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + self.seconds, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


memo = Memo()
