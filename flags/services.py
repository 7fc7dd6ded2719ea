"""Flag decisions and the handling of unknown flag names."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.http import HttpRequest

from flags import UnknownFlag
from flags.conf import conf
from flags.models import Flag, Team

logger = logging.getLogger("flags")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def unknown_flag(name: str) -> bool:
    """Raise ``UnknownFlag`` when strict, else warn once per name and answer off."""
    if conf.strict:
        known = sorted(Flag.objects.values_list("name", flat=True))
        raise UnknownFlag(
            f"Unknown flag {name!r}: no flags.Flag row has that name (known: {', '.join(known)}). "
            "Create it in a data migration or the admin."
        )
    with _warned_lock:
        first = name not in _warned
        _warned.add(name)
    if first:
        logger.warning("Unknown flag %r: treated as off. Create it in the admin.", name)
    return False


def flag_is_enabled(
    name: str,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    team: Team | None = None,
) -> bool:
    """See ``flags.is_enabled``."""
    if user is None and request is not None:
        user = getattr(request, "user", None)
    flag = Flag.get(name)
    if not flag.pk:
        return unknown_flag(name)
    return flag.is_enabled_for(user=user, team=team)
