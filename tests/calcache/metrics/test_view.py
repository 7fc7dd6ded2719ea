"""Who may scrape ``metrics/``: a user with ``calcache.view_dashboard`` or the bearer
token; everyone else a JSON 401/403, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-metrics-token"


@pytest.fixture
def url() -> str:
    return reverse("calcache:metrics")


@pytest.fixture
def token_on(settings: Any) -> None:
    settings.CALCACHE_METRICS_TOKEN = TOKEN


def test_mounted_at_metrics(url: str) -> None:
    assert url == "/calendar-cache/metrics/"


def test_anonymous_is_401_json(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 401
    assert "view_dashboard" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_user_without_the_permission_is_403_json(client: Client, url: str) -> None:
    client.force_login(UserFactory(is_staff=True))
    response = client.get(url)
    assert response.status_code == 403
    assert response.json() == {"error": "The metrics need the permission calcache.view_dashboard."}


@pytest.mark.parametrize("superuser", [False, True])
def test_a_user_with_the_permission_scrapes(
    client: Client, url: str, operator: Any, superuser: bool
) -> None:
    client.force_login(UserFactory(is_superuser=True) if superuser else operator)
    response = client.get(url)
    assert response.status_code == 200
    assert b"# TYPE calcache_sync_runs_total counter" in response.content
    assert b"calcache_rollout_stage 1.0" in response.content


def test_the_right_bearer_token_scrapes(client: Client, url: str, token_on: None) -> None:
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert b"calcache_metrics_database_up 1.0" in response.content


@pytest.mark.parametrize(
    "header",
    ["Bearer wrong", f"Bearer {TOKEN}x", "Bearer ", "bearer " + TOKEN[:-1], "Bearer é\x7f"],
)
def test_a_wrong_token_is_403_json(client: Client, url: str, token_on: None, header: str) -> None:
    response = client.get(url, HTTP_AUTHORIZATION=header)
    assert response.status_code == 403
    assert response.json() == {"error": "Wrong metrics token."}


def test_a_token_when_token_access_is_off_is_403(client: Client, url: str) -> None:
    response = client.get(url, HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 403
    assert "CALCACHE_METRICS_TOKEN" in response.json()["error"]


def test_another_scheme_is_no_token(client: Client, url: str, token_on: None) -> None:
    response = client.get(url, HTTP_AUTHORIZATION=f"Basic {TOKEN}")
    assert response.status_code == 401


def test_a_token_beats_a_signed_in_user_without_the_permission(
    client: Client, url: str, token_on: None
) -> None:
    client.force_login(UserFactory())
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get(url).status_code == 403


def test_only_get(client: Client, url: str, token_on: None) -> None:
    response = client.post(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405
