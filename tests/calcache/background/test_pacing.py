"""calcache.background.pacing: each Google account's budget of sync starts and its cool-down."""

from __future__ import annotations

import time
from typing import Any

from calcache.background import pacing

MINUTE = 60 * 29_000_000  # a clock minute's start, as a Unix time


def test_each_account_has_its_own_budget_of_sync_starts(settings: Any) -> None:
    settings.CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE = 2
    assert pacing.seconds_until_allowed(1, now=MINUTE + 10) == 0.0
    assert pacing.seconds_until_allowed(1, now=MINUTE + 20) == 0.0
    assert pacing.seconds_until_allowed(1, now=MINUTE + 45) == 15.0  # the minute's rest
    assert pacing.seconds_until_allowed(2, now=MINUTE + 45) == 0.0  # another account
    assert pacing.seconds_until_allowed(1, now=MINUTE + 61) == 0.0  # a new minute
    settings.CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE = 0
    assert pacing.seconds_until_allowed(3, now=MINUTE + 62) == 0.0  # 0: no budget


def test_a_start_that_must_wait_does_not_spend_the_budget(settings: Any) -> None:
    settings.CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE = 1
    assert pacing.seconds_until_allowed(1, now=MINUTE) == 0.0
    for second in range(1, 6):  # five starts turned away
        assert pacing.seconds_until_allowed(1, now=MINUTE + second) == 60.0 - second
    settings.CALCACHE_CREDENTIAL_SYNCS_PER_MINUTE = 2
    # had the waits counted, the raised budget would still be spent
    assert pacing.seconds_until_allowed(1, now=MINUTE + 10) == 0.0


def test_a_cool_down_holds_the_account_back_and_is_never_shortened() -> None:
    before = time.time()
    pacing.cool_down(1, 30)
    pacing.cool_down(1, 5)  # a shorter answer after a longer one
    pacing.cool_down(1, 0)  # and none at all
    wait = pacing.seconds_until_allowed(1, now=before)
    assert 30 <= wait <= 30 + (time.time() - before)
    assert pacing.seconds_until_allowed(2, now=before) == 0.0  # another account
    assert pacing.seconds_until_allowed(1, now=before + 31 + (time.time() - before)) == 0.0


def test_a_longer_cool_down_extends_a_shorter_one() -> None:
    before = time.time()
    pacing.cool_down(1, 5)
    pacing.cool_down(1, 40)
    assert pacing.seconds_until_allowed(1, now=before) >= 40
