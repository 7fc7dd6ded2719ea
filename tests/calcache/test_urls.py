"""calcache.urls: the pages' URL names."""

from __future__ import annotations

from django.urls import reverse


def test_urls_are_named() -> None:
    assert reverse("calcache:me") == "/calendar-cache/me/"
    assert reverse("calcache:dashboard") == "/calendar-cache/dashboard/"
