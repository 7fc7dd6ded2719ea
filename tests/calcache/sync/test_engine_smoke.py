from __future__ import annotations

from datetime import timedelta

import pytest

from calcache.sync.engine import SyncOutcome
from tests.calcache.sync.conftest import Mirror

pytestmark = pytest.mark.django_db(transaction=False)


def test_first_sync_is_full_then_incremental(mirror: Mirror) -> None:
    e = mirror.emulator
    e.add_event(
        mirror.email, start=mirror.now + timedelta(hours=1), end=mirror.now + timedelta(hours=2)
    )
    result = mirror.sync()
    assert result.outcome == SyncOutcome.FULL, result
    assert result.upserted == 1
    mirror.assert_mirrors()
    e.add_event(
        mirror.email,
        start=mirror.now + timedelta(days=1),
        end=mirror.now + timedelta(days=1, hours=2),
    )
    result = mirror.sync()
    assert result.outcome == SyncOutcome.INCREMENTAL, result
    mirror.assert_mirrors()
