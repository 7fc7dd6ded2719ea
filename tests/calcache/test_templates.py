"""calcache/templates/calcache: every page extends the overridable base.html, and renders in
a host site that has nothing but calcache's own URLs (no admin, no login, no logout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.test.client import Client as ClientType

from calcache.emulator import EmulatorClient
from tests.calcache.sync.conftest import make_mirror
from tests.calcache.views.test_outages import session_lookup_fails
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parents[2] / "calcache" / "templates" / "calcache"
PAGES = sorted(p.name for p in TEMPLATES.glob("*.html") if p.name not in {"base.html", "nav.html"})
HOST_BASE = """<!doctype html><title>{% block title %}{% endblock %}</title>
<div id="host-layout">{% block nav %}{% endblock %}</div>
<main>{% block content %}{% endblock %}</main>"""


def render_every_page(client: ClientType, emulator: EmulatorClient, prefix: str) -> dict[str, Any]:
    """Each calcache page, reached as a person reaches it, by the template it renders."""
    pages: dict[str, Any] = {}
    user = UserFactory()
    client.force_login(user)
    pages["me.html (no calendar)"] = client.get(f"{prefix}me/")
    pages["calendars.html"] = client.get(f"{prefix}calendars/")
    pages["connect_error.html"] = client.get(f"{prefix}connect/google/")  # no OAuth client
    pages["bad_request.html"] = client.get(f"{prefix}me/", {"week": "not-a-date"})
    pages["forbidden.html"] = client.get(f"{prefix}dashboard/")
    with session_lookup_fails():
        pages["unavailable.html"] = client.get(f"{prefix}me/")
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    pages["dashboard.html"] = client.get(f"{prefix}dashboard/")
    client.force_login(make_mirror(emulator).user)
    pages["me.html"] = client.get(f"{prefix}me/", {"week": "2026-03-02"})
    return pages


def test_every_page_extends_the_base_template() -> None:
    assert set(PAGES) == {
        "bad_request.html",
        "calendars.html",
        "connect_error.html",
        "dashboard.html",
        "forbidden.html",
        "me.html",
        "unavailable.html",
    }
    for name in PAGES:
        first = (TEMPLATES / name).read_text().splitlines()[0]
        assert first == '{% extends "calcache/base.html" %}', name


def test_the_nav_lives_in_one_place() -> None:
    # the sign-out form and the admin link were once copied into several pages
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text()
        if path.name != "nav.html":
            assert "logout" not in text and "admin:index" not in text, path.name
            assert "{% block nav %}" not in text or path.name == "base.html", path.name
    base = (TEMPLATES / "base.html").read_text()
    for block in ("title", "extra_head", "extra_css", "nav", "content", "footer"):
        assert f"{{% block {block} %}}" in base, block


def test_a_host_base_template_restyles_every_page(
    client: Client, emulator: EmulatorClient, settings: Any, tmp_path: Path
) -> None:
    (tmp_path / "calcache").mkdir()
    (tmp_path / "calcache" / "base.html").write_text(HOST_BASE)
    host_templates = [{**django_settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    settings.TEMPLATES = host_templates
    pages = render_every_page(client, emulator, "/calendar-cache/")
    assert {name.split(" ")[0] for name in pages} == set(PAGES)
    for name, response in pages.items():
        html = response.content.decode()
        assert '<div id="host-layout">' in html, name
        assert '<span class="brand">' not in html, name  # calcache's own layout is gone
        assert "<main>" in html and "</main>" in html, name
    # the pages' own blocks still fill the host's layout
    assert "<title>Calendar cache dashboard</title>" in pages["dashboard.html"].content.decode()
    assert 'id="week"' in pages["me.html"].content.decode()
    assert 'href="/calendar-cache/calendars/"' in pages["me.html"].content.decode()


def test_every_page_renders_in_a_host_with_only_calcaches_urls(
    client: Client, emulator: EmulatorClient, settings: Any
) -> None:
    # tests/projects/minimal_host/urls.py mounts calcache.urls and nothing else
    settings.ROOT_URLCONF = "tests.projects.minimal_host.urls"
    pages = render_every_page(client, emulator, "/scheduling/cache/")
    statuses = {name: response.status_code for name, response in pages.items()}
    assert statuses == {
        "me.html (no calendar)": 200,
        "calendars.html": 200,
        "connect_error.html": 503,
        "bad_request.html": 400,
        "forbidden.html": 403,
        "unavailable.html": 503,
        "dashboard.html": 200,
        "me.html": 200,
    }
    for name, response in pages.items():
        html = response.content.decode()
        assert "Sign out" not in html and 'id="nav-admin"' not in html, name
        assert 'href="/scheduling/cache/me/"' in html, name
        assert "Traceback" not in html, name
