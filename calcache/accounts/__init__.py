"""Connected accounts: storing a Google account's token, choosing its calendars, and
encrypting tokens at rest.

- ``connection``: ``connect_google_account`` and key rotation of stored tokens.
- ``selection``: the calendar picker (calendarList, the current choice, a new one).
- ``crypto``: Fernet encryption of tokens, used by ``Credential.token``.

May import: ``calcache.google``, ``calcache.push.channels`` (a newly selected calendar
gets a push channel), ``calcache.models``, ``calcache.conf``, ``calcache.exceptions``;
``crypto`` imports only ``calcache.conf`` and ``calcache.exceptions`` (models use it).
"""
