"""calcache.services.connect_google_account and credential maintenance."""

from __future__ import annotations

import pytest

from calcache.exceptions import InvalidTokenData
from calcache.models import Credential, SelectedCalendar
from calcache.services import connect_google_account, mark_credential_invalid
from tests.factories import UserFactory, google_token

pytestmark = pytest.mark.django_db


def selection(credential: Credential) -> dict[str, bool]:
    return dict(credential.selected_calendars.values_list("calendar_id", "enabled"))


def test_connect_without_google_stores_the_token_and_selects_the_primary_alias() -> None:
    user = UserFactory()
    credential = connect_google_account(user=user, token=google_token(account="Me@Example.com"))
    credential.refresh_from_db()
    assert credential.user == user
    assert credential.provider == "google"
    assert credential.account_email == "me@example.com"
    assert credential.token == google_token(account="Me@Example.com")
    assert "refresh-token" not in credential.encrypted_token
    assert selection(credential) == {"primary": True}
    assert credential.selected_calendars.get().is_primary


def test_connect_is_idempotent_per_account() -> None:
    user = UserFactory()
    first = connect_google_account(user=user, token=google_token(), account_email="a@example.com")
    second = connect_google_account(
        user=user, token=google_token(token="ya29.new"), account_email="a@example.com"
    )
    assert first.pk == second.pk
    assert Credential.objects.count() == 1
    assert SelectedCalendar.objects.count() == 1
    second.refresh_from_db()
    assert second.token["token"] == "ya29.new"


def test_another_account_of_the_same_user_is_another_credential() -> None:
    user = UserFactory()
    a = connect_google_account(user=user, token=google_token(), account_email="a@example.com")
    b = connect_google_account(user=user, token=google_token(), account_email="b@example.com")
    assert a.pk != b.pk


def test_explicit_calendar_ids_become_exactly_the_selection() -> None:
    user = UserFactory()
    credential = connect_google_account(
        user=user, token=google_token(), calendar_ids=["a@x", "b@x", "a@x"]
    )
    assert selection(credential) == {"a@x": True, "b@x": True}
    connect_google_account(user=user, token=google_token(), calendar_ids=["b@x", "c@x"])
    assert selection(credential) == {"a@x": False, "b@x": True, "c@x": True}
    # None keeps an existing account's selection
    connect_google_account(user=user, token=google_token())
    assert selection(credential) == {"a@x": False, "b@x": True, "c@x": True}
    connect_google_account(user=user, token=google_token(), calendar_ids=["a@x"])
    assert selection(credential) == {"a@x": True, "b@x": False, "c@x": False}


def test_reconnect_clears_the_invalid_mark() -> None:
    user = UserFactory()
    credential = connect_google_account(user=user, token=google_token())
    mark_credential_invalid(credential=credential, reason="invalid_grant: Token has been revoked")
    credential.refresh_from_db()
    assert credential.invalid and credential.invalidated_at is not None
    assert credential.invalid_reason.startswith("invalid_grant")
    connect_google_account(user=user, token=google_token())
    credential.refresh_from_db()
    assert not credential.invalid and credential.invalidated_at is None


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not a dict", "must be a dict"),
        ({"token": "ya29"}, "refresh_token"),
        ({"refresh_token": ""}, "refresh_token"),
    ],
)
def test_bad_token_is_rejected_and_nothing_is_stored(token: object, message: str) -> None:
    with pytest.raises(InvalidTokenData, match=message):
        connect_google_account(user=UserFactory(), token=token)  # type: ignore[arg-type]
    assert not Credential.objects.exists()


@pytest.mark.parametrize("calendar_ids", [[], [""], ["  "], [None], ["x" * 256]])
def test_bad_calendar_ids_are_rejected_and_nothing_is_stored(calendar_ids: list[str]) -> None:
    with pytest.raises(ValueError):
        connect_google_account(user=UserFactory(), token=google_token(), calendar_ids=calendar_ids)
    assert not Credential.objects.exists()
    assert not SelectedCalendar.objects.exists()
