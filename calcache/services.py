"""The writes a host site calls, and ``get_availability``, the answer the product uses.

A stable facade: the implementations live in the packages that own them
(``calcache.accounts``, ``calcache.availability``); import from here.
"""

from calcache.accounts.connection import (
    connect_google_account,
    mark_credential_invalid,
    rotate_token_encryption,
)
from calcache.availability.answer import Availability, get_availability

__all__ = [
    "Availability",
    "connect_google_account",
    "get_availability",
    "mark_credential_invalid",
    "rotate_token_encryption",
]
