"""Feature flags for calcache's staged rollout, built on django-waffle.

``flags.is_enabled(name, *, request=None, user=None, team=None)`` is the one
entry point the rest of the code uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from flags.models import Team

__all__ = ["UnknownFlag", "is_enabled"]


class UnknownFlag(LookupError):
    """A flag name that has no row (raised in tests and under DEBUG, see FLAGS_STRICT)."""


def is_enabled(
    name: str,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    team: Team | None = None,
) -> bool:
    """Whether flag ``name`` is on for ``user`` (or ``request.user``) and/or ``team``.

    The answer for a user is the same with and without a request, in any
    process, and stays on while the flag's percentage only grows.
    """
    from flags.services import flag_is_enabled

    return flag_is_enabled(name, request=request, user=user, team=team)
