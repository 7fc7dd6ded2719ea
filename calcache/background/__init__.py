"""Background work: what runs outside a request, and the runners that run it.

- ``jobs``: the work itself (refresh a notified calendar, sync a queued one), returning
  a ``JobResult`` whose ``JobOutcome`` and ``retry_in`` say what happened and when to
  try again.
- ``runners``: the in-process thread pool, the dirty-flag runner and the Celery runner
  (``CALCACHE_BACKGROUND_RUNNER``).
- ``pacing``: each Google account's budget of sync starts per minute, shared by workers.
- ``sweep``: the calendars the periodic sweep should sync.
- ``beat``: the Celery beat schedule a host merges into its own.

The Celery tasks themselves are ``calcache.tasks`` (entry points only: they call jobs).
May import: ``calcache.rollout.dual_write``, ``calcache.sync``, ``calcache.push.channels``,
``calcache.models``, ``calcache.conf``, ``flags``; ``runners`` sends ``calcache.tasks``.
"""
