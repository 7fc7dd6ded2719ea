"""Signals a host site can connect receivers to (docs/signals.md).

Every signal is sent with ``send_robust``: a receiver that raises never breaks the sync,
the connect or the rollout change that sent it; its exception is logged to the
``calcache.signals`` logger (under ``calcache``) with the traceback, and the other
receivers still run.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger("calcache.signals")

account_connected = Signal()
"""Sent by ``calcache.services.connect_google_account`` once its transaction has
committed. ``sender``: ``calcache.models.Credential``. Keyword arguments:

- ``credential``: the stored ``Credential``;
- ``user``: the user it belongs to;
- ``created``: ``True`` for a new account, ``False`` when an existing one was reconnected.

Receivers run with ``send_robust``: one that raises is logged, never seen by the caller.
"""

calendar_synced = Signal()
"""Sent by the sync engine (``calcache.sync.engine.sync_calendar``) after every run of one
selected calendar, whatever its outcome (synced, skipped, failed; also when a database
failure ended the run inside ``sync_calendars``). ``sender``:
``calcache.models.SelectedCalendar``. Keyword arguments:

- ``selected_calendar``: the ``SelectedCalendar``;
- ``result``: the run's ``calcache.sync.engine.SyncResult``;
- ``outcome``: the outcome's short name, ``str``: ``"full"``, ``"incremental"``,
  ``"failed"``, ``"locked"``, ``"flag_off"``, ``"credential_invalid"``, ``"disabled"``
  (``SyncOutcome`` member names, lower case);
- ``events_written``: events inserted or updated, ``int``;
- ``events_deleted``: events deleted, ``int``.

Sent at once, not on commit (a sync spans many transactions). Receivers run with
``send_robust``: one that raises is logged, never seen by the sync.
"""

rollout_changed = Signal()
"""Sent when a ``RolloutEvent`` is recorded for a change of a rollout flag or of the kill
switch: ``calendar_cache_rollout set-write|set-read`` (``calcache.rollout.stages.set_flag``),
the Django admin, and the automatic rollback; after the transaction commits.
``sender``: ``calcache.models.RolloutEvent``. Keyword arguments:

- ``event``: the ``RolloutEvent`` (``action``, ``reason``, ``figures`` with ``before``
  and ``after``, ``actor``).

Receivers run with ``send_robust``: one that raises is logged, never seen by the caller.
"""

rollback_triggered = Signal()
"""Sent when the automatic rollback turned the kill switch on
(``calcache.rollout.shadow.check_rollback``), after its transaction commits (and after
``rollout_changed`` for the same event). ``sender``: ``calcache.models.RolloutEvent``.
Keyword arguments:

- ``event``: the ``RolloutEvent`` recorded (action ``"automatic rollback"``);
- ``mismatches``: comparisons that disagreed, ``int``;
- ``samples``: comparisons looked at (the newest ``CALCACHE_ROLLBACK_MIN_SAMPLES``), ``int``.

Receivers run with ``send_robust``: one that raises is logged, never seen by the caller.
"""

availability_answered = Signal()
"""Sent for every availability answer and every failed read counted in
``AvailabilityStat`` (``calcache.availability.stats``), at once, in the answering thread:
keep receivers quick. ``sender``: ``None``. Keyword arguments:

- ``source``: ``"sql"``, ``"json"``, ``"live"`` or ``"mixed"``, ``str``;
- ``seconds``: how long the answer (or the failed read) took, ``float``;
- ``error``: ``True`` for a failed SQL or live read (the answer that followed is sent on
  its own), ``bool``.

Receivers run with ``send_robust``: one that raises is logged, never seen by the caller.
"""

google_error = Signal()
"""Sent for every failed request to Google (each attempt: a retried call sends one per
failure) by ``calcache.google.client.GoogleCalendarClient``. ``sender``: the client class.
Keyword arguments:

- ``error``: the ``calcache.exceptions.GoogleError`` raised (``status``, ``reason``).

Receivers run with ``send_robust``: one that raises is logged, never seen by the caller.
"""

NAMES = {
    id(account_connected): "account_connected",
    id(calendar_synced): "calendar_synced",
    id(rollout_changed): "rollout_changed",
    id(rollback_triggered): "rollback_triggered",
    id(availability_answered): "availability_answered",
    id(google_error): "google_error",
}


def send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` to every receiver with ``send_robust``; log each receiver that
    raised (to ``calcache.signals``, with its traceback) and carry on."""
    for receiver, response in signal.send_robust(sender=sender, **kwargs):
        if isinstance(response, Exception):
            logger.error(
                "Receiver %r of calcache signal %s raised",
                receiver,
                NAMES.get(id(signal), signal),
                exc_info=response,
            )


def send_on_commit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """``send`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send(signal, sender, **kwargs))
