"""Scraping calcache's metrics view, and the calls that give it something to count.

The counters live for the whole test process, so tests compare a scrape after with one
before (``Scrape.delta``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from calcache.emulator import EmulatorClient
from calcache.models import SelectedCalendar
from calcache.services import connect_google_account
from tests.factories import UserFactory, grant_permission

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
Labels = frozenset[tuple[str, str]]


@dataclass
class Scrape:
    """One exposition: every sample's value by (name, labels)."""

    samples: dict[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


@pytest.fixture
def operator(db: None) -> Any:
    """A signed-in-able user with the permission the metrics view asks for."""
    user = UserFactory(username="operator")
    grant_permission(user, "calcache.view_dashboard")
    return user


@pytest.fixture
def scrape(operator: Any) -> Callable[[], Scrape]:
    """``scrape()``: GET metrics/ as the operator and parse it."""
    client = Client()
    client.force_login(operator)

    def get() -> Scrape:
        response = client.get(reverse("calcache:metrics"))
        assert response.status_code == 200, response.content[:500]
        assert response["Content-Type"].startswith("text/plain")
        return Scrape.parse(response.content.decode())

    return get


def connected_calendar(
    emulator: EmulatorClient, email: str = "ada@example.com", *, events: int = 0
) -> SelectedCalendar:
    """A user connected to a new emulator account with ``events`` one-hour events ahead."""
    emulator.set_clock(NOW)
    token = emulator.add_account(email, time_zone="Europe/London")
    for hour in range(events):
        start = NOW + timedelta(hours=2 * hour + 1)
        emulator.add_event(email, start=start, end=start + timedelta(hours=1))
    credential = connect_google_account(user=UserFactory(), token=token)
    return SelectedCalendar.objects.get(credential=credential)
