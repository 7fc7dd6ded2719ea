"""calcache: Google Calendar events mirrored into SQL, so availability is read locally."""

__version__ = "0.2.0.dev0"
