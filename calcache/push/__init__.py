"""Google push notifications.

- ``channels``: ``events.watch`` channels: opening, stopping and renewing them.
- ``tokens``: each channel's own token, signed with ``CALCACHE_WEBHOOK_TOKEN``, kept hashed.
- ``notifications``: the webhook's logic: validate and authenticate a notification, drop
  replays, route it to its calendar, mark the calendar changed and hand the refresh to
  the background runner.

May import: ``calcache.google``, ``calcache.models``, ``calcache.conf``;
``notifications`` also ``calcache.background.runners``.
"""
