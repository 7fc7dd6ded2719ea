"""The German translation: pages and API errors follow Accept-Language, and every string
marked for translation in calcache and flags has a German msgstr in the committed .po and
.mo files (a newly marked string without one fails here)."""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation

from calcache.rollout.stages import set_flag
from flags.names import WRITE_FLAG
from tests.factories import UserFactory, grant_permission

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("calcache", "flags")
ENTRY_LINE = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) (".*")$')


@dataclass
class Entry:
    """One message of a .po file."""

    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    fuzzy: bool = False


def read_po(path: Path) -> dict[tuple[str | None, str], Entry]:
    """The entries of a .po file by context and msgid (the header left out)."""
    entries: list[Entry] = [Entry()]
    key = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        match = ENTRY_LINE.match(line)
        starts_entry = line.startswith("#") or (match and match.group(1) in ("msgctxt", "msgid"))
        if starts_entry and entries[-1].msgstr:
            entries.append(Entry())
        entry = entries[-1]
        if line.startswith("#,") and "fuzzy" in line:
            entry.fuzzy = True
        if match:
            key, text = match.group(1), ast.literal_eval(match.group(2))
            if key.startswith("msgstr"):
                entry.msgstr.append("")
        elif line.startswith('"'):
            text = ast.literal_eval(line)
        else:
            continue
        if key == "msgctxt":
            entry.msgctxt = (entry.msgctxt or "") + text
        elif key == "msgid":
            entry.msgid += text
        elif key == "msgid_plural":
            entry.msgid_plural = (entry.msgid_plural or "") + text
        elif key.startswith("msgstr"):
            entry.msgstr[-1] += text
    return {(entry.msgctxt, entry.msgid): entry for entry in entries if entry.msgid}


def committed_po(package: str) -> Path:
    return ROOT / package / "locale" / "de" / "LC_MESSAGES" / "django.po"


def german_page(client: Client, url: str) -> str:
    """The HTML of ``url`` for a browser asking for German (a 200, in German)."""
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="de">' in html
    return html


@pytest.mark.django_db
def test_the_week_page_is_german_for_a_german_browser(client: Client) -> None:
    client.force_login(UserFactory())
    html = german_page(client, "/calendar-cache/me/")
    assert "Noch kein Kalender verbunden" in html and ">Kalender verbinden</a>" in html
    assert ">Meine Woche</a>" in html and ">Abmelden</button>" in html
    english = client.get("/calendar-cache/me/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "No calendar is connected yet" in english and '<html lang="en">' in english


@pytest.mark.django_db
def test_an_api_400_is_german_for_a_german_client(client: Client) -> None:
    client.force_login(UserFactory())
    response = client.get(
        "/calendar-cache/availability/",
        {"start": "2026-06-01T00:00:00Z"},
        HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "'end' ist erforderlich: ein Datum mit Uhrzeit nach ISO 8601 mit "
        "Zeitzonenversatz oder Z."
    }


@pytest.mark.django_db
def test_a_metrics_refusal_is_german_for_a_german_client(client: Client) -> None:
    client.force_login(UserFactory())
    response = client.get(reverse("calcache:metrics"), HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 403
    assert response.json() == {
        "error": "Die Metriken erfordern die Berechtigung calcache.view_dashboard."
    }


@pytest.mark.django_db
def test_the_dashboard_is_german_for_a_german_browser(client: Client) -> None:
    operator = UserFactory()
    grant_permission(operator, "calcache.view_dashboard")
    client.force_login(operator)
    set_flag(name=WRITE_FLAG, everyone=True)  # stage 2; the read flag reaches nobody
    html = german_page(client, "/calendar-cache/dashboard/")
    assert "Stufe 2: doppeltes Schreiben" in html
    assert "1. Infrastruktur" in html and "4. vollständige Migration" in html
    assert "Überwachen Sie die Datenkonsistenz" in html and "für alle an" in html
    assert ">niemand<" in html
    for english in (
        "dual write",
        "infrastructure",
        "full migration",
        "Watch sync health",
        "Monitor data consistency",
        "Then widen writes to 10%",
        "on for everyone",
        ">nobody<",
    ):
        assert english not in html, english
    # the same strings, lazy, follow the language at hand: a command's is LANGUAGE_CODE
    out = StringIO()
    with translation.override("en"):
        call_command("calendar_cache_rollout", "status", stdout=out)
    assert "Stage 2 of 4: dual write" in out.getvalue()
    assert "Monitor data consistency" in out.getvalue() and "nobody" in out.getvalue()


@pytest.mark.parametrize("package", PACKAGES)
def test_every_marked_string_has_a_german_translation(
    package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("xgettext") is None:
        pytest.skip("makemessages needs GNU gettext's xgettext (apt-get install gettext)")
    copy = tmp_path / package
    shutil.copytree(
        ROOT / package, copy, ignore=shutil.ignore_patterns("__pycache__", "locale", "migrations")
    )
    (copy / "locale" / "de" / "LC_MESSAGES").mkdir(parents=True)
    monkeypatch.chdir(copy)
    call_command("makemessages", locale=["de"], verbosity=0)
    wanted = read_po(copy / "locale" / "de" / "LC_MESSAGES" / "django.po")
    committed = read_po(committed_po(package))
    assert len(wanted) > 10  # makemessages found the marked strings
    missing = sorted(set(wanted) - set(committed), key=str)
    assert missing == [], f"makemessages -l de in {package}/, then translate: {missing}"
    for key, wanted_entry in wanted.items():
        entry = committed[key]
        assert not entry.fuzzy, f"fuzzy: {key!r}"
        assert entry.msgstr and all(entry.msgstr), f"untranslated: {key!r}"
        assert entry.msgid_plural == wanted_entry.msgid_plural, key


@pytest.mark.parametrize("package", PACKAGES)
def test_the_committed_mo_matches_the_po(package: str) -> None:
    # the runtime reads the .mo and needs no gettext tools: it must be compiled from the .po
    mo = committed_po(package).with_suffix(".mo")
    with mo.open("rb") as handle:
        catalog = gettext.GNUTranslations(handle)
    for (context, msgid), entry in read_po(committed_po(package)).items():
        if context is not None:
            assert catalog.pgettext(context, msgid) == entry.msgstr[0], msgid
        elif entry.msgid_plural is None:
            assert catalog.gettext(msgid) == entry.msgstr[0], msgid
        else:
            assert catalog.ngettext(msgid, entry.msgid_plural, 1) == entry.msgstr[0], msgid
            assert catalog.ngettext(msgid, entry.msgid_plural, 2) == entry.msgstr[1], msgid
