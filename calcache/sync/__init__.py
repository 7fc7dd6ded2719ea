"""The sync engine: a correct SQL mirror of each selected calendar.

- ``engine``: full, incremental and roll-forward syncs of one calendar, and of many.
- ``mapping``: Google event resources -> ``CalendarEvent`` field values.
- ``writes``: the page upsert and deletions.
- ``locking``: one sync per calendar at a time.
- ``cleanup``: deleting what the mirror no longer needs.

May import: ``calcache.google``, ``calcache.models``, ``calcache.conf``,
``calcache.exceptions``, ``flags``.
"""
