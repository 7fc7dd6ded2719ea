"""Every URL calcache mounts, fuzzed: junk and edge-case query strings, form bodies and
headers, sent as an anonymous visitor, a regular user and a staff superuser, with a fixed
seed. No request may answer 5xx (issue 15). ``pytest -s`` prints the counts by status.

The URLs come from ``calcache.urls`` itself, so a new view is fuzzed the day it is
mounted. Google is the bundled emulator on loopback: the regular user's answers come
live from its freeBusy (and the JSON cache), the staff user's from the SQL tables.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.core.signals import got_request_exception
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, reverse
from django.urls.converters import IntConverter

import calcache.urls
from calcache.emulator import EmulatorClient
from calcache.emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from calcache.models import PushChannel
from calcache.rollout.stages import set_flag
from flags.names import READ_FLAG, WRITE_FLAG
from tests.calcache.sync.conftest import Mirror, make_mirror
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

SEED = 20261216
REQUESTS = 2500
WEBHOOK_TOKEN = "fuzz-webhook-token"
CHANNEL_TOKEN = "fuzz-channel-token"  # a per-channel token (PushChannel.token_hash)

# 5xx the fuzz still finds in code other engineers are fixing: a piece of the exception's
# last traceback line -> why. Such answers are printed and counted but do not fail the
# test. Delete an entry once its fix lands: from then on that failure fails the test.
KNOWN_5XX: dict[str, str] = {}


def known(sent: Sent, table: dict[str, str]) -> str | None:
    """Why ``sent``'s 5xx is a known one (``table``), or None when it is new."""
    return next((why for cause, why in table.items() if cause in sent.cause), None)


def report_known(prefix: str, failures: list[Sent], table: dict[str, str]) -> list[Sent]:
    """Print every 5xx, known or new, and the known causes no longer seen (delete those
    entries); the new ones."""
    for sent in failures:
        why = known(sent, table)
        label = f"known ({why})" if why else "NEW"
        print(f"{prefix}: {label} 5xx: {sent}\n    {sent.cause}", file=sys.stderr)
    for cause in table:
        if not any(cause in sent.cause for sent in failures):
            print(f"{prefix}: known cause not seen, delete its entry: {cause!r}", file=sys.stderr)
    return [sent for sent in failures if not known(sent, table)]


def allow_staff(request: Any, target_user: Any) -> bool:
    """CALCACHE_AVAILABILITY_PERMISSION for the fuzz: staff may see everyone."""
    return bool(request.user.is_staff)


# --- the URLs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mounted:
    name: str  # "calcache:availability"
    pattern: URLPattern
    namespace: str

    def path(self, rng: random.Random) -> str:
        kwargs = {
            key: rng.choice(path_values(converter))
            for key, converter in self.pattern.pattern.converters.items()
        }
        return reverse(self.name, kwargs=kwargs)


def path_values(converter: Any) -> list[str]:
    """Values a path converter accepts, from ordinary to absurd."""
    if isinstance(converter, IntConverter):
        return ["0", "1", "2", "9223372036854775808", "9" * 400]
    return ["x", "1", "primary", "a" * 300, "%C3%BC", "a.b@example.com"]


def mounted_urls() -> list[Mounted]:
    """Every URL pattern in calcache.urls, includes followed."""
    found: list[Mounted] = []

    def walk(patterns: list[Any], namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = f"{namespace}:{entry.namespace}" if entry.namespace else namespace
                walk(entry.url_patterns, inner)
            else:
                assert entry.name, f"calcache mounts an unnamed URL: {entry.pattern}"
                found.append(Mounted(f"{namespace}:{entry.name}", entry, namespace))

    walk(list(calcache.urls.urlpatterns), calcache.urls.app_name)
    return found


# --- the inputs --------------------------------------------------------------------------

NUMBERS = [
    "0",
    "1",
    "-1",
    "1.5",
    "1e3",
    "0x10",
    " 7 ",
    "007",
    "+3",
    "²",
    "١٢",
    "１２",
    "NaN",
    "inf",
    "13",
    "32",
    "9999",
    "10000",
    "2147483648",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999",
    "9" * 5000,
]
DATES = [
    "2026-03-02T12:00:00Z",
    "2026-03-02T12:00:00+00:00",
    "2026-03-03T12:00:00Z",
    "2026-03-02T13:00:00+01:00",
    "2026-03-02T12:00:00 01:00",
    "2026-03-02T12:00:00+14:00",
    "2026-03-02T12:00:00-23:59",
    "2026-03-02T12:00:00+24:00",
    "2026-03-02T12:00:00.123456789Z",
    "2026-03-02T12:00:00",
    "2026-03-02",
    "2026-03-02\x00",
    "2026-03-02T12:00:00Z\x00",
    "2026-02-29",
    "2026-13-01",
    "2026-W10",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2099-12-31T23:59:59+00:00",
    "2100-01-01T00:00:00Z",
    "9999-12-01T00:00:00Z",
    "9999-12-08T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:00:00-05:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:30:00+01:00",
    "9999-12-13",
    "9999-12-27",
    "9999-12-31",
    "0001-01-01",
    "0001-01-08",
    "1970-01-05",
    "2099-12-21",
    "2099-12-28",
]
# Every one of these starts is before every one of these ends.
PLAUSIBLE_STARTS = [
    "2026-03-02T00:00:00Z",
    "2026-03-02T12:00:00Z",
    "2026-03-01T23:00:00-05:00",
    "2026-03-02T13:00:00+01:00",
]
PLAUSIBLE_ENDS = ["2026-03-03T12:00:00Z", "2026-03-09T00:00:00Z", "2026-03-04T00:00:00+09:00"]
STRINGS = [
    "",
    " ",
    "\x00",
    "1\x00",
    "a\x00b",
    "%00",
    "\n",
    "\r\n",
    "\t",
    "abc",
    "null",
    "None",
    "true",
    "[]",
    "{}",
    "[1]",
    ",",
    ",,,",
    "1,2,3",
    "1,,2",
    "1,x",
    " , ",
    "+",
    "/",
    "..",
    "../../etc/passwd",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "ü",
    "日本語",
    "\u202e",
    "😀",
    "\ud7ff",
    "\ufeff1",
    "primary",
    "access_denied",
    "a" * 5000,
    ",".join(str(n) for n in range(1, 400)),
    "1," * 150,
]
KNOWN_NAMES = [
    "start",
    "end",
    "user",
    "users",
    "team",
    "week",
    "credential",
    "calendar",
    "account",
    "state",
    "code",
    "error",
    "next",
    "scope",
]
JUNK_NAMES = ["", "\x00", "x", "start[]", "ü", "a" * 300, "csrfmiddlewaretoken"]
GOOG_HEADERS = [
    "X-Goog-Channel-Token",
    "X-Goog-Channel-Id",
    "X-Goog-Resource-Id",
    "X-Goog-Resource-Uri",
    "X-Goog-Resource-State",
    "X-Goog-Message-Number",
    "X-Goog-Channel-Expiration",
]


@dataclass
class World:
    """What the fuzz knows exists, so that some requests get past the first check."""

    regular: Mirror
    staff: Mirror
    loner: Any  # a user with no Google account
    team_slug: str
    credential_ids: list[int]
    calendar_ids: list[str]
    channel_ids: list[str]
    resource_ids: list[str]
    clients: dict[str, Client] = field(default_factory=dict)

    def user_ids(self) -> list[str]:
        ids = [self.regular.user.pk, self.staff.user.pk, self.loner.pk]
        return [str(pk) for pk in ids]


@dataclass
class Sent:
    """One fuzz request and what it got, printable as a reproducer."""

    who: str
    method: str
    path: str
    query: str
    content_type: str
    body: bytes
    headers: dict[str, str]
    status: int = 0
    error: str = ""

    def __str__(self) -> str:
        line = f"[{self.who}] {self.method} {self.path}"
        if self.query:
            line += f"?{self.query[:300]!r}"
        if self.body:
            line += f" body({self.content_type})={self.body[:300]!r}"
        if self.headers:
            line += f" headers={ {k: v[:120] for k, v in self.headers.items()} }"
        return f"{line} -> {self.status}"

    @property
    def cause(self) -> str:
        """The last line of the traceback: the exception that made the 5xx."""
        lines = [line for line in self.error.strip().splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""


class Fuzzer:
    def __init__(self, rng: random.Random, world: World) -> None:
        self.rng = rng
        self.world = world
        self.refused: dict[str, set[str]] = {}  # URL name -> methods answered 405
        self.plausible = 0.5  # this request's share of plausible values

    def pick(self, values: list[Any]) -> Any:
        return self.rng.choice(values)

    def request_factory_request(self) -> Any:
        """A staff request, for asking a ModelAdmin which actions it offers."""
        request = RequestFactory().get("/")
        request.user = self.world.staff.user
        return request

    def state(self, who: str) -> str:
        client = self.world.clients[who]
        pending = client.session.get("calcache_google_oauth") or {}
        return str(pending.get("state") or "")

    def value(self, name: str, who: str) -> str:
        """A value for parameter ``name``: plausible for it, or junk of any kind."""
        rng, world = self.rng, self.world
        if rng.random() < self.plausible:
            plausible: dict[str, Callable[[], str]] = {
                "start": lambda: self.pick(PLAUSIBLE_STARTS),
                "end": lambda: self.pick(PLAUSIBLE_ENDS),
                "week": lambda: self.pick(["2026-03-02", "2026-03-05", "2026-02-23", ""]),
                "user": lambda: self.pick(world.user_ids()),
                "users": lambda: ",".join(rng.sample(world.user_ids(), rng.randint(1, 3))),
                "team": lambda: world.team_slug,
                "credential": lambda: str(self.pick(world.credential_ids)),
                "calendar": lambda: self.pick(world.calendar_ids),
                "state": lambda: self.state(who),
                "error": lambda: "access_denied",
                "code": lambda: self.pick(["abc", "4/0Afake"]),
            }
            if name in plausible:
                return plausible[name]()
        roll = rng.random()
        if roll < 0.3:
            return self.pick(NUMBERS)
        if roll < 0.6:
            return self.pick(DATES)
        return self.pick(STRINGS)

    def params(self, who: str) -> list[tuple[str, str]]:
        """A parameter list: mostly known names, sometimes repeated or unknown ones."""
        rng = self.rng
        if rng.random() < 0.05:
            return []
        names = rng.sample(KNOWN_NAMES, rng.randint(1, 5))
        if self.plausible > 0.5:  # at most one of the parameters naming whom to ask about
            names = [n for n in names if n not in ("user", "users", "team")]
            names += rng.choice([[], [], ["user"], ["users"], ["team"]])
        if self.plausible > 0.5 or {"start", "end"} & set(names) or rng.random() < 0.5:
            names += [n for n in ("start", "end") if n not in names]
        pairs = [(name, self.value(name, who)) for name in names]
        if names and rng.random() < 0.15:
            name = self.pick(names)
            pairs += [(name, self.value(name, who)) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.1:
            pairs.append((self.pick(JUNK_NAMES), self.pick(STRINGS)))
        if rng.random() < 0.1:
            for _ in range(rng.randint(1, 4)):
                pairs.append(("calendar", self.value("calendar", who)))
        rng.shuffle(pairs)
        return pairs

    def encode(self, pairs: list[tuple[str, str]]) -> str:
        """Percent-encoded as a browser would, or raw as a hand-written URL is."""
        if self.rng.random() < 0.25:
            raw = "&".join(f"{k}={v}" if self.rng.random() < 0.9 else k for k, v in pairs)
            return raw.replace("#", "%23")
        return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)

    def headers(self) -> dict[str, str]:
        rng, world = self.rng, self.world
        headers: dict[str, str] = {}
        accept = self.pick(["", "application/json", "text/html", "*/*", "\x00", "a" * 500])
        if accept:
            headers["Accept"] = accept
        if rng.random() < 0.2:
            headers["X-Requested-With"] = "XMLHttpRequest"
        if rng.random() < 0.5:
            good = {
                "X-Goog-Channel-Token": [WEBHOOK_TOKEN, CHANNEL_TOKEN],
                "X-Goog-Channel-Id": world.channel_ids,
                "X-Goog-Resource-Id": world.resource_ids,
                "X-Goog-Resource-Uri": [
                    f"https://www.googleapis.com/calendar/v3/calendars/{quote(c)}/events"
                    for c in world.calendar_ids
                ]
                + ["https://www.googleapis.com/calendar/v3/calendars/%00/events"],
                "X-Goog-Resource-State": ["sync", "exists", "not_exists"],
                "X-Goog-Message-Number": ["1", "2", "9999"],
                "X-Goog-Channel-Expiration": ["Tue, 10 Mar 2026 12:00:00 GMT"],
            }
            for name in GOOG_HEADERS:
                roll = rng.random()
                if roll < 0.6:
                    headers[name] = self.pick(good[name])
                elif roll < 0.85:
                    headers[name] = self.pick(NUMBERS + STRINGS + DATES)
        # A WSGI server hands headers over as latin-1 text.
        return {k: v.encode().decode("latin-1") for k, v in headers.items()}

    def body(self, pairs: list[tuple[str, str]]) -> tuple[str, bytes]:
        roll = self.rng.random()
        form = "application/x-www-form-urlencoded"
        if roll < 0.75:
            return form, self.encode(pairs).encode()
        if roll < 0.8:
            return form, b""
        if roll < 0.85:
            return "application/json", b'{"credential": 1, "calendar": ["primary"]}'
        if roll < 0.9:
            return "multipart/form-data; boundary=fuzz", b"--fuzz\r\njunk\r\n"
        if roll < 0.95:
            return "text/plain", self.pick(STRINGS).encode()
        return form, bytes(self.rng.getrandbits(8) for _ in range(64))

    def request(self, who: str, url: Mounted) -> Sent:
        self.plausible = self.pick([0.2, 0.5, 0.9])
        methods = ["GET"] * 9 + ["POST"] * 9 + ["HEAD", "PUT", "DELETE", "OPTIONS"]
        allowed = [m for m in methods if m not in self.refused.get(url.name, ())]
        method = self.pick(allowed if allowed and self.rng.random() < 0.9 else methods)
        pairs = self.params(who)
        query, content_type, body = "", "", b""
        if method == "POST":
            content_type, body = self.body(pairs)
            if self.rng.random() < 0.3:
                query = self.encode(self.params(who))
        else:
            query = self.encode(pairs)
        return Sent(who, method, url.path(self.rng), query, content_type, body, self.headers())


# --- the run -----------------------------------------------------------------------------


@pytest.fixture
def world(emulator: EmulatorClient, settings: Any) -> World:
    settings.CALCACHE_GOOGLE_CLIENT_ID = DEFAULT_CLIENT_ID
    settings.CALCACHE_GOOGLE_CLIENT_SECRET = DEFAULT_CLIENT_SECRET
    settings.CALCACHE_WEBHOOK_TOKEN = WEBHOOK_TOKEN
    settings.CALCACHE_AVAILABILITY_PERMISSION = f"{__name__}.allow_staff"
    settings.CALCACHE_GOOGLE_MAX_ATTEMPTS = 1
    # Sessions in the cache: a few thousand requests without a session query each.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    regular = make_mirror(emulator, "ada@example.com")
    staff = make_mirror(emulator, "grace@example.com", time_zone="America/New_York")
    staff.user.is_staff = staff.user.is_superuser = True
    staff.user.save()
    for mirror in (regular, staff):
        start = mirror.now + timedelta(hours=2)
        emulator.add_event(mirror.email, start=start, end=start + timedelta(hours=1))
    set_flag(name=WRITE_FLAG, everyone=True)
    staff.sync()  # the staff user's answers come from SQL, the regular user's live
    team = TeamFactory(slug="fuzzers", members=[regular.user, staff.user])
    set_flag(name=READ_FLAG, team=team.slug)
    loner = UserFactory()
    selected = [regular.selected(), staff.selected()]
    channels = [
        PushChannel.objects.create(
            selected_calendar=row,
            channel_id=f"fuzz-channel-{row.pk}",
            resource_id=f"fuzz-resource-{row.pk}",
            expiration=row.created_at + timedelta(days=3650),
            token_hash=hashlib.sha256(CHANNEL_TOKEN.encode()).hexdigest() if n else "",
        )
        for n, row in enumerate(selected)
    ]
    world = World(
        regular=regular,
        staff=staff,
        loner=loner,
        team_slug=team.slug,
        credential_ids=[row.credential_id for row in selected],
        calendar_ids=[row.calendar_id for row in selected] + ["primary"],
        channel_ids=[c.channel_id for c in channels],
        resource_ids=[c.resource_id for c in channels],
    )
    for who, user in (("anonymous", None), ("regular", regular.user), ("staff", staff.user)):
        client = Client(enforce_csrf_checks=False, raise_request_exception=False)
        if user is not None:
            client.force_login(user)
        world.clients[who] = client
    return world


class _Undo(Exception):
    """Rolls back a request that failed, so one failure cannot poison the next request."""


@pytest.fixture
def tracebacks() -> Iterator[list[str]]:
    caught: list[str] = []

    def record(sender: Any, request: Any = None, **kwargs: Any) -> None:
        caught.append(traceback.format_exc())

    got_request_exception.connect(record)
    yield caught
    got_request_exception.disconnect(record)


def send(client: Client, sent: Sent, tracebacks: list[str]) -> None:
    extra: dict[str, Any] = {"headers": sent.headers}
    if sent.method in ("POST", "PUT"):
        extra.update(data=sent.body, content_type=sent.content_type)
    path = f"{sent.path}?{sent.query}" if sent.query else sent.path
    before = len(tracebacks)
    try:
        with transaction.atomic():
            response = client.generic(sent.method, path, **extra)
            sent.status = response.status_code
            if sent.status >= 500:
                raise _Undo
    except _Undo:
        page = response.content[:2000].decode(errors="replace")
        sent.error = "".join(tracebacks[before:]) or page


def test_no_input_yields_a_5xx(world: World, tracebacks: list[str]) -> None:
    rng = random.Random(SEED)
    fuzzer = Fuzzer(rng, world)
    urls = mounted_urls()
    assert "calcache:google-webhook" in {url.name for url in urls}, [url.name for url in urls]
    by_status: Counter[int] = Counter()
    by_url: dict[str, Counter[int]] = {url.name: Counter() for url in urls}
    failures: list[Sent] = []
    seconds_by_url: dict[str, float] = dict.fromkeys(by_url, 0.0)
    reached: set[str] = set()  # URLs that answered a signed-in user below 400
    began = time.monotonic()
    for _ in range(REQUESTS):
        who = rng.choice(list(world.clients))
        url = rng.choice(urls)
        sent = fuzzer.request(who, url)
        sent_at = time.monotonic()
        send(world.clients[who], sent, tracebacks)
        seconds_by_url[url.name] += time.monotonic() - sent_at
        by_status[sent.status] += 1
        by_url[url.name][sent.status] += 1
        if sent.status == 405:
            fuzzer.refused.setdefault(url.name, set()).add(sent.method)
        if sent.status < 400 and who != "anonymous":
            reached.add(url.name)
        if sent.status >= 500:
            failures.append(sent)
    seconds = time.monotonic() - began

    print(f"\nfuzz: {REQUESTS} requests in {seconds:.1f}s (seed {SEED})", file=sys.stderr)
    print(f"fuzz: by status {dict(sorted(by_status.items()))}", file=sys.stderr)
    for name, counts in by_url.items():
        print(
            f"fuzz:   {name}: {dict(sorted(counts.items()))} in {seconds_by_url[name]:.1f}s",
            file=sys.stderr,
        )
    unexpected = report_known("fuzz", failures, KNOWN_5XX)
    report = "\n\n".join(f"{sent}\n{sent.error}" for sent in unexpected[:10])
    assert not unexpected, f"{len(unexpected)} requests answered 5xx:\n{report}"
    # Every URL let a signed-in user past its checks at least once: the fuzz got in.
    assert reached == set(by_url), {name: by_url[name] for name in set(by_url) - reached}


# --- our admins ----------------------------------------------------------------------------

ADMIN_REQUESTS = 500
ADMIN_APPS = ("calcache", "flags")  # the ModelAdmins this repository ships
# Known 5xx in our admins, the same rule as KNOWN_5XX: delete an entry once its fix lands.
KNOWN_ADMIN_5XX: dict[str, str] = {}


def admin_parameters(model_admin: Any) -> list[str]:
    """The query parameters a ModelAdmin's changelist reads: its filters' lookups, its date
    hierarchy, search, ordering and paging."""
    names = ["q", "o", "p", "e", "all", "_popup", "_to_field", "_changelist_filters"]
    for entry in model_admin.list_filter:
        if isinstance(entry, str):
            names += [entry, f"{entry}__exact", f"{entry}__id__exact", f"{entry}__isnull"]
            names += [f"{entry}__in", f"{entry}__gte"]
        elif isinstance(entry, tuple):
            names += [entry[0], f"{entry[0]}__exact"]
        else:
            names.append(getattr(entry, "parameter_name", "x"))
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    return names


def admin_requests(rng: random.Random, fuzzer: Fuzzer) -> Iterator[Sent]:
    """Requests to every changelist, add, change, history, delete and
    autocomplete page of our admins, with junk filters and action selections."""
    from django.contrib import admin

    admins = [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in ADMIN_APPS
    ]
    assert admins, "no ModelAdmin of ours is registered"
    ids = [*NUMBERS, *STRINGS[:12], "1", "2"]
    for _ in range(ADMIN_REQUESTS):
        model, model_admin = rng.choice(admins)
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        page = rng.choice(["changelist", "changelist", "changelist", "add", "change", "other"])
        if page in ("change", "other"):
            object_id = quote(rng.choice(ids), safe="") or "1"
            suffix = "change" if page == "change" else rng.choice(["history", "delete"])
            path = reverse(f"{info}_{suffix}", args=["__id__"]).replace("__id__", object_id)
        elif page == "add":
            path = reverse(f"{info}_add")
        else:
            path = reverse(f"{info}_changelist")
        pairs = [
            (name, fuzzer.pick(NUMBERS + DATES + STRINGS))
            for name in rng.sample(admin_parameters(model_admin), rng.randint(0, 3))
        ]
        method = "GET"
        body = b""
        if page == "changelist" and rng.random() < 0.3:
            method = "POST"
            actions = list(model_admin.get_actions(fuzzer.request_factory_request()))
            form = [("action", fuzzer.pick([*actions, "", "nope", "\x00"])), ("index", "0")]
            form += [("_selected_action", fuzzer.pick(ids)) for _ in range(rng.randint(0, 3))]
            body = fuzzer.encode(form).encode()
        elif page == "add" and rng.random() < 0.5:
            method = "POST"
            body = fuzzer.encode(fuzzer.params("staff")).encode()
        content_type = "application/x-www-form-urlencoded" if method == "POST" else ""
        yield Sent("staff", method, path, fuzzer.encode(pairs), content_type, body, {})
    for model, model_admin in admins:  # the autocomplete view, with each field that uses it
        for field_name in getattr(model_admin, "autocomplete_fields", ()):
            for _ in range(10):
                pairs = [
                    ("app_label", model._meta.app_label),
                    ("model_name", model._meta.model_name),
                    ("field_name", field_name),
                    ("term", fuzzer.pick(STRINGS)),
                    ("page", fuzzer.pick(NUMBERS)),
                ]
                query = fuzzer.encode(pairs)
                path = reverse("admin:autocomplete")
                yield Sent("staff", "GET", path, query, "", b"", {})


def test_our_admins_yield_no_5xx(world: World, tracebacks: list[str]) -> None:
    rng = random.Random(SEED)
    fuzzer = Fuzzer(rng, world)
    by_status: Counter[int] = Counter()
    failures: list[Sent] = []
    for sent in admin_requests(rng, fuzzer):
        send(world.clients["staff"], sent, tracebacks)
        by_status[sent.status] += 1
        if sent.status >= 500:
            failures.append(sent)
    print(f"\nfuzz admin: {sum(by_status.values())} requests", file=sys.stderr)
    print(f"fuzz admin: by status {dict(sorted(by_status.items()))}", file=sys.stderr)
    unexpected = report_known("fuzz admin", failures, KNOWN_ADMIN_5XX)
    report = "\n\n".join(f"{sent}\n{sent.error[-3000:]}" for sent in unexpected[:10])
    assert not unexpected, f"{len(unexpected)} admin requests answered 5xx:\n{report}"
    assert by_status[200] > 0, by_status
