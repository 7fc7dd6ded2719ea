"""calcache's only door to Google Calendar.

- ``client``: ``GoogleCalendarClient`` over google-api-python-client and google-auth:
  plain data in and out, calcache's own exceptions (``calcache.exceptions``) carrying
  Google's status and reason, retries with backoff.
- ``types``: the plain dataclasses the client returns.
- ``oauth``: the authorization-code flow of the connect views.
- ``credentials``: ``client_for(credential)``, the one place a client is built for a
  stored credential (and refreshed tokens are saved).

May import: ``calcache.conf``, ``calcache.exceptions``, ``calcache.intervals``; only
``credentials`` knows ``calcache.models``. Rules of the Google API we rely on:
docs/google-calendar.md.
"""
