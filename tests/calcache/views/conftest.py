"""Fixtures for the view tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_sampling(settings: Any) -> None:
    # Pages answer through get_availability; a sampled shadow comparison would add
    # Google calls and CacheComparison rows the tests do not ask for.
    settings.CALCACHE_SHADOW_SAMPLE_RATE = 0
