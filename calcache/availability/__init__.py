"""Availability: the sources of a user's busy time, side by side, and the choice between
them.

- ``answer``: ``get_availability``, the answer the product uses: SQL, the JSON cache
  or Google live, as the rollout flags and the SQL copy's coverage allow.
- ``sql``: the SQL read (``busy_intervals``) and its coverage (``sync_coverage``).
- ``json_cache``: the legacy JSON cache that the SQL tables replace.
- ``live``: Google's freeBusy, asked live.
- ``stats``: per-minute answer counts and latencies by source.

May import: ``calcache.google``, ``calcache.models``, ``calcache.intervals``,
``calcache.conf``, ``flags``; ``answer`` also hands samples to ``calcache.rollout.shadow``.
"""
