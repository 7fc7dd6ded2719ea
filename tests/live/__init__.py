"""The live suite: conformance cases and calcache's sync run against the bundled emulator
and, with CALCACHE_LIVE_GOOGLE_TOKEN, against the real Google (docs/live-tests.md)."""
