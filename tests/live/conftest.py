"""The live suite runs each case against two targets (``target`` below):

- ``emulator``: always; the bundled emulator (``emulator`` fixture of
  calcache.emulator.fixtures), a new account and scratch calendar per case, the
  calendar made with ``calendars.insert`` and deleted after the case with
  ``calendars.delete``, as on Google;
- ``google``: the real Google, only when CALCACHE_LIVE_GOOGLE_TOKEN names an
  authorized-user JSON file, and only when the run's ``-m`` expression names ``live``
  (``make test-live``), so the default suite never calls Google. One scratch calendar
  serves the session and is deleted at its end, whatever happened.

Without the token every google case is skipped by one session fixture, so the run
reports one reason on one line.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from calcache.emulator.client import EmulatorClient
from calcache.google.client import GoogleCalendarClient
from tests.live.targets import (
    EMULATOR_ACCOUNT,
    GOOGLE_API_URL,
    GOOGLE_TOKEN_URI,
    SCRATCH_TIME_ZONE,
    TOKEN_ENV,
    Target,
    delete_calendar,
    insert_scratch_calendar,
    load_authorized_user,
    token_path,
)

HERE = Path(__file__).parent
TARGETS = ["emulator", "google"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: the live suite (tests/live), run against the emulator and Google"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "live" in (config.option.markexpr or ""):
        return
    unasked = [item for item in items if _target_of(item) == "google"]
    if unasked:
        config.hook.pytest_deselected(items=unasked)
        items[:] = [item for item in items if _target_of(item) != "google"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and _target_of(item) == "google" and isinstance(report.longrepr, tuple):
        # pytest reports a fixture's skip at each test's line; giving them all the line
        # that decides lets the summary fold them into one.
        report.longrepr = (__file__, _google_token.__code__.co_firstlineno, report.longrepr[2])
    return report


def _target_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None or HERE not in item.path.parents:
        return None
    target = callspec.params.get("target")
    return target if isinstance(target, str) else None


def _google_settings(token: dict[str, Any]) -> dict[str, str]:
    return {
        "CALCACHE_GOOGLE_API_URL": GOOGLE_API_URL,
        "CALCACHE_GOOGLE_TOKEN_URI": token.get("token_uri") or GOOGLE_TOKEN_URI,
    }


def _google_token() -> dict[str, Any]:
    path = token_path()
    if not path:
        pytest.skip(f"{TOKEN_ENV} is not set: the google target was not run (docs/live-tests.md)")
    try:
        return load_authorized_user(path)
    except ValueError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def google_scratch() -> Iterator[tuple[dict[str, Any], GoogleCalendarClient, str]]:
    """The token, a client and the id of a scratch calendar in the real Google account,
    deleted after the session."""
    token = _google_token()
    # The client keeps the endpoint and token URI it was built with.
    with override_settings(**_google_settings(token)):
        client = GoogleCalendarClient(token)
    calendar_id = insert_scratch_calendar(client)
    try:
        yield token, client, calendar_id
    finally:
        delete_calendar(client, calendar_id)


def _emulator_target(emulator: EmulatorClient) -> Iterator[Target]:
    """A new account on the emulator and a scratch calendar made and removed by the same
    Calendar API calls as Google's (``calendars.insert`` / ``calendars.delete``)."""
    token = emulator.add_account(EMULATOR_ACCOUNT, time_zone="Europe/London")
    client = GoogleCalendarClient(token)
    calendar_id = insert_scratch_calendar(client)
    try:
        yield Target(
            name="emulator",
            token=token,
            client=client,
            calendar_id=calendar_id,
            time_zone=SCRATCH_TIME_ZONE,
            advance_clock=lambda: emulator.advance_clock(timedelta(seconds=1)),
        )
    finally:
        delete_calendar(client, calendar_id)


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, settings: Any) -> Iterator[Target]:
    """An empty scratch calendar on the emulator or on Google, calcache's settings
    pointed at the same server."""
    if request.param == "emulator":
        yield from _emulator_target(request.getfixturevalue("emulator"))
        return
    token, client, calendar_id = request.getfixturevalue("google_scratch")
    for name, value in _google_settings(token).items():
        setattr(settings, name, value)
    google = Target(
        name="google",
        token=token,
        client=client,
        calendar_id=calendar_id,
        time_zone=SCRATCH_TIME_ZONE,
        advance_clock=lambda: None,
    )
    google.empty()
    yield google
