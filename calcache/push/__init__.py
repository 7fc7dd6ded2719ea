"""Google push notifications.

- ``channels``: ``events.watch`` channels: opening, stopping and renewing them.
- ``notifications``: the webhook's logic: authenticate a notification, route it to its
  calendar, mark the calendar changed and hand the refresh to the background runner.

May import: ``calcache.google``, ``calcache.models``, ``calcache.conf``;
``notifications`` also ``calcache.background.runners``.
"""
