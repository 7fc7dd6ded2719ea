"""The rollout: moving reads from the legacy JSON cache to SQL in stages (docs/rollout.md).

- ``stages``: the stage the flags say, flag changes recorded as ``RolloutEvent``, and
  the retirement of the JSON cache.
- ``dual_write``: a changed calendar is written to both caches.
- ``shadow``: sampled answers compared with the other source, and the automatic rollback.
- ``monitoring``: the staff dashboard's reads (flag members, sync health, series).

May import: ``calcache.availability``, ``calcache.sync``, ``calcache.models``,
``calcache.conf``, ``flags``.
"""
