"""An offline Google Calendar API v3 emulator, served over real HTTP on loopback.

It follows the rules in docs/google-calendar.md (paging, sync tokens and 410s,
recurring instances, cancelled entries, freeBusy, push channels, OAuth, errors)
so that calcache, and the host sites that use it, can test and demo against
the real google-api-python-client with no internet.

- ``EmulatorState`` (state.py): the in-memory, thread-safe model.
- ``make_app`` (app.py): the WSGI app (Calendar API, OAuth, ``/_emulator/`` control).
- ``EmulatorServer`` (server.py): a threaded HTTP server on a free port.
- ``EmulatorClient`` (client.py): a Python client for the control API.
- ``fixtures``: a pytest plugin (``pytest_plugins = ["calcache.emulator.fixtures"]``);
  only that module imports pytest.

An optional part of calcache: it needs the ``emulator`` extra (Werkzeug and
python-dateutil), ``pip install "calcache[emulator]"``. Nothing else in calcache
imports it.
"""

from calcache.extras import MissingExtra

try:
    import dateutil.rrule  # noqa: F401
    import werkzeug  # noqa: F401
except ImportError as exc:
    raise MissingExtra("emulator", exc) from exc

from calcache.emulator.client import EmulatorClient
from calcache.emulator.server import EmulatorServer
from calcache.emulator.state import EmulatorState

__all__ = ["EmulatorClient", "EmulatorServer", "EmulatorState"]
