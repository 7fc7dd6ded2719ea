"""The writes a host site calls, and ``get_availability``, the answer the product uses.

A stable facade: the implementations live in the packages that own them
(``calcache.accounts``, ``calcache.availability``); import from here. Names load on
first use, so importing this module needs no configured Django.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from calcache._lazy import lazy_attributes

if TYPE_CHECKING:
    from calcache.accounts.connection import (
        connect_google_account,
        mark_credential_invalid,
        rotate_token_encryption,
    )
    from calcache.availability.answer import (
        Availability,
        get_availability,
        get_availability_for_users,
    )

FACADE = {
    "Availability": "calcache.availability.answer",
    "connect_google_account": "calcache.accounts.connection",
    "get_availability": "calcache.availability.answer",
    "get_availability_for_users": "calcache.availability.answer",
    "mark_credential_invalid": "calcache.accounts.connection",
    "rotate_token_encryption": "calcache.accounts.connection",
}

__all__ = [
    "Availability",
    "connect_google_account",
    "get_availability",
    "get_availability_for_users",
    "mark_credential_invalid",
    "rotate_token_encryption",
]


__getattr__, __dir__ = lazy_attributes(globals(), FACADE)
