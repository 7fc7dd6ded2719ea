"""The errors of the flags app."""


class UnknownFlag(LookupError):
    """A flag name that has no row (raised in tests and under DEBUG, see FLAGS_STRICT)."""
