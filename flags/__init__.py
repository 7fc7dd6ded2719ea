"""Feature flags for calcache's staged rollout, built on django-waffle.

``flags.is_enabled(name, *, request=None, user=None, team=None)`` is the one
entry point the rest of the code uses.

- ``models``: ``Flag`` (the project's ``WAFFLE_FLAG_MODEL``, with teams and the policy
  for a missing flag) and ``Team``.
- ``bucketing``: the deterministic percentage rule, independent of requests.
- ``selectors``: who is in a flag (counts and bulk decisions).
- ``names``: the flag and switch names calcache ships.
- ``memo``: answers kept in the process for a second (changes here clear it at once).

Imports nothing of ``calcache``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flags.exceptions import UnknownFlag

if TYPE_CHECKING:
    from django.http import HttpRequest

    from flags.models import Team

__all__ = ["UnknownFlag", "is_enabled", "switch_is_active"]


def is_enabled(
    name: str,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    team: Team | None = None,
    user_id: Any = None,
) -> bool:
    """Whether flag ``name`` is on for ``user`` (or ``request.user``, or the user whose
    primary key is ``user_id``) and/or ``team``.

    The answer for a user is the same with and without a request, in any
    process, and stays on while the flag's percentage only grows.
    """
    from flags.models import Flag, decide_for  # the registry is not ready when this loads

    if user is None and request is not None:
        user = getattr(request, "user", None)
    state = Flag.state_of(name)
    if state is None:
        return Flag.missing_flag_answer(name)
    return decide_for(state, user=user, team=team, user_id=user_id)


def switch_is_active(name: str) -> bool:
    """Whether the waffle switch ``name`` is on (``waffle.switch_is_active``), from this
    process's memo for at most ``flags.memo.MEMO_SECONDS``."""
    import waffle

    from flags.memo import memo

    return memo.get(("switch", name), lambda: bool(waffle.switch_is_active(name)))
