"""Admin pages render for staff, validate rollout input and never show secrets."""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.sites import AdminSite
from django.db import models
from django.test import Client
from django.urls import reverse
from waffle.models import Switch

from calcache import signals
from calcache.models import CalendarEvent, RolloutEvent, SelectedCalendar
from flags.models import Flag, Team
from flags.names import KILL_SWITCH, READ_FLAG, WRITE_FLAG
from tests.factories import (
    CalendarCacheFactory,
    CalendarEventFactory,
    CalendarSyncTokenFactory,
    CredentialFactory,
    FlagFactory,
    SelectedCalendarFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client: Client) -> Client:
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


def flag_form(flag: Flag, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": flag.name,
        "note": flag.note,
        "everyone": "unknown",
        "users": "",
        "groups": [],
        "teams": [],
        "percent": "",
        "rollout_key": flag.rollout_key,
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:flags_flag_changelist",
        "admin:flags_flag_add",
        "admin:flags_team_changelist",
        "admin:flags_team_add",
        "admin:waffle_switch_changelist",
        "admin:calcache_credential_changelist",
        "admin:calcache_selectedcalendar_changelist",
        "admin:calcache_calendarevent_changelist",
        "admin:calcache_calendarsynctoken_changelist",
        "admin:calcache_calendarcache_changelist",
        "admin:calcache_availabilitystat_changelist",
        "admin:calcache_cachecomparison_changelist",
        "admin:calcache_rolloutevent_changelist",
    ],
)
def test_changelists_render(admin_client_: Client, url_name: str) -> None:
    event = CalendarEventFactory()
    SelectedCalendarFactory(credential=event.credential, calendar_id=event.calendar_id)
    CalendarSyncTokenFactory(credential=event.credential)
    CalendarCacheFactory(credential=event.credential)
    TeamFactory()
    response = admin_client_.get(reverse(url_name))
    assert response.status_code == 200


def test_change_pages_render(admin_client_: Client) -> None:
    event = CalendarEventFactory()
    selected = SelectedCalendarFactory(credential=event.credential)
    token = CalendarSyncTokenFactory(credential=event.credential)
    cache_entry = CalendarCacheFactory(credential=event.credential)
    team = TeamFactory()
    for name, pk in [
        ("calcache_calendarevent", event.pk),
        ("calcache_selectedcalendar", selected.pk),
        ("calcache_calendarsynctoken", token.pk),
        ("calcache_calendarcache", cache_entry.pk),
        ("flags_team", team.pk),
        ("flags_flag", Flag.objects.get(name="calendar-cache-sql").pk),
    ]:
        response = admin_client_.get(reverse(f"admin:{name}_change", args=[pk]))
        assert response.status_code == 200, name


def test_event_changelist_filters(admin_client_: Client) -> None:
    event = CalendarEventFactory(calendar_id="work@example.com", status="cancelled")
    SelectedCalendarFactory(credential=event.credential, calendar_id="work@example.com")
    CalendarEventFactory(calendar_id="home@example.com")
    url = reverse("admin:calcache_calendarevent_changelist")
    response = admin_client_.get(
        url, {"calendar_id": "work@example.com", "status__exact": "cancelled"}
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [event]
    assert b"work@example.com" in response.content  # the calendar filter lists it


def test_credential_page_never_shows_the_token(admin_client_: Client) -> None:
    credential = CredentialFactory()
    response = admin_client_.get(reverse("admin:calcache_credential_change", args=[credential.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "refresh-token" not in body and "ya29" not in body and "client-secret" not in body
    assert credential.encrypted_token not in body
    assert "refresh token present" in body


def test_flag_percent_over_100_is_rejected_with_a_message(admin_client_: Client) -> None:
    flag = Flag.objects.get(name="calendar-cache-sql")
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    response = admin_client_.post(url, flag_form(flag, percent="150"))
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 100." in response.content.decode()
    flag.refresh_from_db()
    assert flag.percent is None


@pytest.mark.parametrize(
    ("percent", "error"),
    [
        ("-1", "greater than or equal to 0"),
        ("12.3456", "no more than 3 decimal places"),
        ("abc", "Enter a number."),
    ],
)
def test_flag_percent_validation(admin_client_: Client, percent: str, error: str) -> None:
    flag = Flag.objects.get(name="calendar-cache-sql")
    response = admin_client_.post(
        reverse("admin:flags_flag_change", args=[flag.pk]), flag_form(flag, percent=percent)
    )
    assert response.status_code == 200
    assert error in response.content.decode()


def test_flag_admin_saves_teams_and_percent_and_shows_who_is_in(admin_client_: Client) -> None:
    members = UserFactory.create_batch(3)
    UserFactory.create_batch(5)
    team = TeamFactory(members=members)
    flag = Flag.objects.get(name="calendar-cache-sql-write")
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    response = admin_client_.post(url, flag_form(flag, teams=[team.pk], percent="12.5"))
    assert response.status_code == 302, response.content.decode()[:2000]
    flag.refresh_from_db()
    assert flag.percent == Decimal("12.5")
    assert list(flag.teams.all()) == [team]
    page = admin_client_.get(url).content.decode()
    assert "Who is in" in page
    assert "of 9 users" in page  # 8 created here + the admin
    assert "3 by users/groups/teams" in page


def test_team_admin_search_by_member(admin_client_: Client) -> None:
    alice = UserFactory(username="alice")
    team = TeamFactory(name="Acme", members=[alice])
    TeamFactory(name="Other")
    response = admin_client_.get(reverse("admin:flags_team_changelist"), {"q": "alice"})
    assert list(response.context["cl"].result_list) == [team]
    assert Team.objects.count() == 2


def test_sync_rows_cannot_be_edited_by_hand(admin_client_: Client) -> None:
    event = CalendarEventFactory()
    url = reverse("admin:calcache_calendarevent_change", args=[event.pk])
    response = admin_client_.post(url, {"status": "cancelled"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.status == "confirmed"


# --- junk input (issue 15): a message or a 4xx, never a 500 ----------------------------

JUNK = [
    "\x00",
    "a\x00b",
    "9999",
    "10000",
    "0",
    "-1",
    "x",
    "1.5",
    "99999999999999999999999",
    "9" * 5000,
    "",
    " ",
    "%",
    "'",
    "True",
    "日本",
    "2026-13-45",
    "<b>",
]
OUR_APPS = ("calcache", "flags", "waffle")  # waffle's Switch and Sample: flags/admin.py


def our_admins() -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    site: AdminSite = admin.site
    return sorted(
        ((m, a) for m, a in site._registry.items() if m._meta.app_label in OUR_APPS),
        key=lambda pair: pair[0]._meta.label,
    )


def changelist_url(model: type[models.Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def staff() -> Iterator[Client]:
    """A staff superuser whose client answers a view's exception as the 500 a browser gets."""
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    yield client


@pytest.fixture
def rows(db: None) -> CalendarEvent:
    event = CalendarEventFactory()
    SelectedCalendarFactory(credential=event.credential, calendar_id=event.calendar_id)
    CalendarSyncTokenFactory(credential=event.credential)
    CalendarCacheFactory(credential=event.credential)
    TeamFactory(members=[event.user])
    Switch.objects.get_or_create(name="junk-walk")
    return event


def test_every_changelist_survives_junk_query_params(staff: Client, rows: CalendarEvent) -> None:
    rng = random.Random(15)
    failures: list[tuple[Any, ...]] = []
    requests = 0
    for model, model_admin in our_admins():
        url = changelist_url(model)
        page = staff.get(url)
        assert page.status_code == 200, url
        names = ["q", "o", "p", "all", "e", "_to_field", "_popup", "unknown__lookup"]
        for spec in page.context["cl"].filter_specs:
            names += spec.expected_parameters()
        for entry in model_admin.list_filter:  # lookups no filter offers, as typed in
            if isinstance(entry, str):
                names += [f"{entry}__in", f"{entry}__gte", f"{entry}__id__in"]
        if model_admin.date_hierarchy:
            names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
        queries = [{name: value} for name in names for value in rng.sample(JUNK, 3)]
        queries += [
            {name: rng.choice(JUNK) for name in rng.sample(names, min(len(names), 3))}
            for _ in range(12)
        ]
        for query in queries:
            requests += 1
            response = staff.get(url, query)
            if response.status_code >= 500:
                failures.append((url, query, response.status_code))
        actions = list(model_admin.get_actions(page.wsgi_request))
        for action in actions:
            for value in rng.sample(JUNK, 3):
                requests += 1
                data = {"action": action, "index": "0", "_selected_action": [value]}
                response = staff.post(url, data)
                if response.status_code >= 500:
                    failures.append((url, data, response.status_code))
    assert requests > 400
    assert not failures, failures[:20]


@pytest.mark.parametrize(
    ("url_name", "params"),
    [
        ("admin:calcache_calendarevent_changelist", {"status__exact": "\x00"}),
        ("admin:calcache_calendarevent_changelist", {"calendar_id": "work\x00"}),
        ("admin:calcache_credential_changelist", {"q": "a\x00b"}),
        ("admin:flags_team_changelist", {"q": "\x00"}),
        ("admin:flags_flag_changelist", {"everyone__exact": "\x00"}),
    ],
)
def test_nul_in_a_filter_or_search_is_a_message(
    staff: Client, rows: CalendarEvent, url_name: str, params: dict[str, str]
) -> None:
    url = reverse(url_name)
    response = staff.get(url, {**params, "o": "1"})
    assert response.status_code == 302
    assert response["Location"] == f"{url}?o=1"  # the junk parameter dropped, the rest kept
    page = staff.get(response["Location"])
    assert page.status_code == 200
    assert "Filter and search values cannot contain NUL characters." in messages_of(page)


@pytest.mark.parametrize(
    "params",
    [
        {"start_time__year": "9999"},
        {"start_time__year": "9999", "start_time__month": "12"},
        {"start_time__year": "9999", "start_time__month": "12", "start_time__day": "31"},
        {"start_time__year": "0"},
        {"start_time__year": "-1"},
        {"start_time__year": "x"},
        {"start_time__year": "10000"},
        {"start_time__year": "2026", "start_time__month": "13"},
        {"start_time__year": "2026", "start_time__month": "2", "start_time__day": "30"},
        {"start_time__year": "9" * 5000},
    ],
)
def test_date_hierarchy_out_of_range_is_a_message(
    staff: Client, rows: CalendarEvent, params: dict[str, str]
) -> None:
    url = reverse("admin:calcache_calendarevent_changelist")
    response = staff.get(url, {**params, "status__exact": "confirmed"}, follow=True)
    assert response.redirect_chain == [(f"{url}?status__exact=confirmed", 302)]
    assert response.status_code == 200
    assert any("cannot be shown" in message for message in messages_of(response))


@pytest.mark.parametrize("time_zone", ["Asia/Tokyo", "America/New_York"])
def test_date_hierarchy_at_year_1_in_a_zone_off_utc(
    staff: Client, rows: CalendarEvent, settings: Any, time_zone: str
) -> None:
    # The period's start, midnight of 0001-01-01 in Tokyo, is before year 1 in UTC.
    settings.TIME_ZONE = time_zone
    url = reverse("admin:calcache_calendarevent_changelist")
    params = {"start_time__year": "1", "start_time__month": "1", "start_time__day": "1"}
    response = staff.get(url, params)
    assert response.status_code in (200, 302)
    if time_zone == "Asia/Tokyo":
        assert response.status_code == 302


def test_date_hierarchy_still_drills_down(staff: Client, rows: CalendarEvent) -> None:
    start = rows.start_time
    url = reverse("admin:calcache_calendarevent_changelist")
    query = {"start_time__year": start.year, "start_time__month": start.month}
    response = staff.get(url, query)
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [rows]
    last = {"start_time__year": "9998", "start_time__month": "12", "start_time__day": "30"}
    assert staff.get(url, last).status_code == 200


@pytest.mark.parametrize(
    "term", ["\x00", "a\x00b", "abc", "1.5", "99999999999999999999999", "9" * 5000]
)
def test_autocomplete_answers_junk_terms(staff: Client, rows: CalendarEvent, term: str) -> None:
    # FlagAdmin.teams searches TeamAdmin, ours. (TeamAdmin.members searches the host
    # site's user admin, which is not calcache's to change.)
    params = {"app_label": "flags", "model_name": "flag", "field_name": "teams", "term": term}
    response = staff.get("/admin/autocomplete/", params)
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"app_label": "flags", "model_name": "flag", "field_name": "teams", "page": "abc"},
        {"app_label": "flags", "model_name": "flag", "field_name": "teams", "page": "9" * 30},
        {"app_label": "flags", "model_name": "flag", "field_name": "1"},
        {"app_label": "flags", "model_name": "1", "field_name": "teams"},
        {"app_label": "\x00", "model_name": "flag", "field_name": "teams"},
    ],
)
def test_autocomplete_junk_ids_are_4xx(
    staff: Client, rows: CalendarEvent, params: dict[str, str]
) -> None:
    response = staff.get("/admin/autocomplete/", {"term": "team", **params})
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize(
    ("url_name", "action", "model"),
    [
        ("admin:calcache_calendarevent_changelist", "delete_selected", CalendarEvent),
        ("admin:calcache_selectedcalendar_changelist", "delete_selected", SelectedCalendar),
        ("admin:flags_flag_changelist", "enable_for_all", Flag),
        ("admin:waffle_switch_changelist", "enable_switches", Switch),
    ],
)
@pytest.mark.parametrize("junk", ["abc", "1.5", "", "\x00", "99999999999999999999999"])
def test_junk_selected_action_ids_are_a_message(
    staff: Client,
    rows: CalendarEvent,
    url_name: str,
    action: str,
    model: type[models.Model],
    junk: str,
) -> None:
    def state() -> list[tuple[Any, ...]]:
        rows = model._default_manager.order_by("pk")
        return [
            (row.pk, getattr(row, "everyone", None), getattr(row, "active", None)) for row in rows
        ]

    url = reverse(url_name)
    before = state()
    data = {"action": action, "index": "0", "_selected_action": [str(before[0][0]), junk]}
    response = staff.post(url, data, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert messages_of(response) == [
        "The selection holds ids that are not valid; nothing was changed."
    ]
    assert state() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("teams", ["abc"]),
        ("teams", ["99999999999999999999999"]),
        ("teams", ["\x00"]),
        ("users", "abc"),
        ("users", "1,99999999999999999999999"),
        ("groups", ["99999999999999999999999"]),
    ],
)
def test_flag_form_with_junk_related_ids_shows_an_error(
    staff: Client, field: str, value: Any
) -> None:
    flag = Flag.objects.get(name="calendar-cache-sql")
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    response = staff.post(url, flag_form(flag, **{field: value}))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field]
    flag.refresh_from_db()
    assert flag.teams.count() == flag.users.count() == 0


@pytest.mark.parametrize("value", ["abc", "99999999999999999999999", "\x00"])
def test_team_form_with_junk_member_ids_shows_an_error(staff: Client, value: str) -> None:
    team = TeamFactory(name="Acme", slug="acme")
    url = reverse("admin:flags_team_change", args=[team.pk])
    response = staff.post(url, {"name": "Acme", "slug": "acme", "members": [value]})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["members"]


def test_selected_calendars_have_no_add_page(staff: Client, rows: CalendarEvent) -> None:
    # credential and calendar_id are read-only, so the add form could never save; users
    # choose their calendars on calendars/ from what Google lists.
    add = reverse("admin:calcache_selectedcalendar_add")
    assert staff.get(add).status_code == 403
    before = SelectedCalendar.objects.count()
    response = staff.post(add, {"time_zone": "UTC", "enabled": "on"})
    assert response.status_code == 403
    assert SelectedCalendar.objects.count() == before
    page = staff.get(reverse("admin:calcache_selectedcalendar_changelist"))
    assert add not in page.content.decode()
    selected = SelectedCalendar.objects.get()
    change = reverse("admin:calcache_selectedcalendar_change", args=[selected.pk])
    assert staff.post(change, {"time_zone": "UTC"}).status_code == 302  # enabled: off
    selected.refresh_from_db()
    assert selected.enabled is False


def test_no_admin_of_ours_has_an_add_page_that_cannot_save(staff: Client) -> None:
    """An add page that offers no editable field for a required column can only fail."""
    for model, model_admin in our_admins():
        request = staff.get(changelist_url(model)).wsgi_request
        if not model_admin.has_add_permission(request):
            continue
        fields = {str(name) for name in model_admin.get_fields(request)}
        editable = fields - {str(name) for name in model_admin.get_readonly_fields(request)}
        required = {
            f.name
            for f in model._meta.concrete_fields
            if not (f.null or f.blank or f.has_default() or f.primary_key or not f.editable)
            and not getattr(f, "auto_now", False)
            and not getattr(f, "auto_now_add", False)
        }
        assert required <= editable, (model._meta.label, required - editable)


@pytest.mark.parametrize(
    "params",
    [
        {"credential__id__exact": "99999999999999999999999"},
        {"credential__id__in": "1,99999999999999999999999"},
        {"credential__gte": "-99999999999999999999999"},
    ],
)
def test_huge_ids_in_a_filter_are_a_message(
    staff: Client, rows: CalendarEvent, params: dict[str, str]
) -> None:
    url = reverse("admin:calcache_calendarevent_changelist")
    response = staff.get(url, params, follow=True)
    assert response.redirect_chain == [(url, 302)]
    assert any("too large a number" in message for message in messages_of(response))


# --- flag and kill-switch changes in the admin are recorded as RolloutEvents ----------


def rollout_events() -> list[RolloutEvent]:
    return list(RolloutEvent.objects.order_by("pk"))


def test_a_flag_changed_in_the_admin_is_recorded_like_the_cli_and_signalled(
    admin_client_: Client, django_capture_on_commit_callbacks: Any
) -> None:
    changed: list[Any] = []

    def receiver(event: RolloutEvent, **kwargs: Any) -> None:
        changed.append(event)

    signals.rollout_changed.connect(receiver, weak=False)
    team = TeamFactory(slug="core")
    member = UserFactory()
    flag = Flag.objects.get(name=WRITE_FLAG)
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client_.post(
                url, flag_form(flag, teams=[team.pk], users=str(member.pk), percent="12.5")
            )
    finally:
        signals.rollout_changed.disconnect(receiver)
    assert response.status_code == 302, response.content.decode()[:2000]
    [event] = rollout_events()
    assert changed == [event]
    assert event.action == f"set {WRITE_FLAG}"  # what set_flag records
    assert event.actor is not None and event.actor.username == "root"
    assert event.reason == f"percent None -> 12.500; added team core; added user {member.pk}"
    assert event.figures == {
        "before": {"everyone": None, "percent": "None", "teams": [], "groups": [], "users": []},
        "after": {
            "everyone": None,
            "percent": "12.500",
            "teams": ["core"],
            "groups": [],
            "users": [member.pk],
        },
    }


def test_a_flag_change_of_only_its_teams_is_recorded(admin_client_: Client) -> None:
    old, new = TeamFactory(slug="old"), TeamFactory(slug="new")
    flag = Flag.objects.get(name=READ_FLAG)
    flag.teams.add(old)
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    response = admin_client_.post(url, flag_form(flag, teams=[new.pk]))
    assert response.status_code == 302
    [event] = rollout_events()
    assert event.reason == "added team new; removed team old"
    assert event.figures["before"]["teams"] == ["old"]
    assert event.figures["after"]["teams"] == ["new"]


def test_saving_a_flag_unchanged_or_another_flag_records_nothing(admin_client_: Client) -> None:
    flag = Flag.objects.get(name=READ_FLAG)
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    assert admin_client_.post(url, flag_form(flag)).status_code == 302
    other = FlagFactory(name="host-feature")
    url = reverse("admin:flags_flag_change", args=[other.pk])
    assert admin_client_.post(url, flag_form(other, everyone="true")).status_code == 302
    assert Flag.objects.get(name="host-feature").everyone is True
    assert rollout_events() == []


def test_a_refused_flag_form_records_nothing(admin_client_: Client) -> None:
    flag = Flag.objects.get(name=READ_FLAG)
    url = reverse("admin:flags_flag_change", args=[flag.pk])
    assert admin_client_.post(url, flag_form(flag, percent="150")).status_code == 200
    assert rollout_events() == []


def test_the_enable_for_all_action_is_recorded(admin_client_: Client) -> None:
    read = Flag.objects.get(name=READ_FLAG)
    other = FlagFactory(name="host-feature")
    data = {"action": "enable_for_all", "index": "0", "_selected_action": [read.pk, other.pk]}
    response = admin_client_.post(reverse("admin:flags_flag_changelist"), data)
    assert response.status_code == 302
    assert Flag.objects.get(pk=other.pk).everyone is True
    [event] = rollout_events()
    assert (event.action, event.reason) == (f"set {READ_FLAG}", "everyone None -> True")
    assert event.actor is not None and event.actor.username == "root"


def switch_form(switch: Any, **fields: Any) -> dict[str, Any]:
    stamps = {
        f"{name}_{i}": part
        for name in ("created", "modified")
        for i, part in enumerate(f"{getattr(switch, name):%Y-%m-%d %H:%M:%S}".split())
    }
    return {"name": switch.name, "note": switch.note} | stamps | fields


def test_the_kill_switch_toggled_in_the_admin_is_recorded(admin_client_: Client) -> None:
    switch = Switch.objects.get(name=KILL_SWITCH)
    url = reverse("admin:waffle_switch_change", args=[switch.pk])
    form = switch_form(switch)
    assert admin_client_.post(url, form | {"active": "on"}).status_code == 302
    assert admin_client_.post(url, form | {"active": "on"}).status_code == 302  # no change
    data = {"action": "disable_switches", "index": "0", "_selected_action": [switch.pk]}
    assert admin_client_.post(reverse("admin:waffle_switch_changelist"), data).status_code == 302
    events = rollout_events()
    assert [(e.action, e.reason, e.figures) for e in events] == [
        (f"set {KILL_SWITCH}", "on", {"before": {"active": False}, "after": {"active": True}}),
        (f"set {KILL_SWITCH}", "off", {"before": {"active": True}, "after": {"active": False}}),
    ]
    assert {e.actor.username for e in events if e.actor} == {"root"}
    assert not Switch.objects.get(pk=switch.pk).active


def test_another_switch_toggled_in_the_admin_records_nothing(admin_client_: Client) -> None:
    switch = Switch.objects.get_or_create(name="host-switch")[0]
    url = reverse("admin:waffle_switch_change", args=[switch.pk])
    assert admin_client_.post(url, switch_form(switch, active="on")).status_code == 302
    assert Switch.objects.get(pk=switch.pk).active
    assert rollout_events() == []


@pytest.mark.parametrize(
    ("model", "changelist", "delete_view"),
    [
        (Flag, "admin:flags_flag_changelist", "admin:flags_flag_delete"),
        (Switch, "admin:waffle_switch_changelist", "admin:waffle_switch_delete"),
    ],
)
def test_rollout_rows_cannot_be_deleted_others_can(
    admin_client_: Client, model: Any, changelist: str, delete_view: str
) -> None:
    name = READ_FLAG if model is Flag else KILL_SWITCH
    protected = model.objects.get(name=name)
    other = model.objects.create(name="host-thing")
    response = admin_client_.post(
        reverse(changelist),
        {"action": "delete_individually", "index": "0",
         "_selected_action": [protected.pk, other.pk]},
        follow=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert f"Not deleted: {name}. Turn a rollout flag off instead." in messages_of(response)
    assert model.objects.filter(pk=protected.pk).exists()
    assert not model.objects.filter(pk=other.pk).exists()
    assert admin_client_.post(reverse(delete_view, args=[protected.pk])).status_code == 403
    assert model.objects.filter(pk=protected.pk).exists()
    assert rollout_events() == []


def test_the_recording_is_mixed_into_a_hosts_own_switch_admin() -> None:
    from calcache.admin import RolloutSwitchAdmin, _record_in_the_registered_admins

    ours = type(admin.site.get_model_admin(Switch))

    class HostSwitchAdmin(admin.ModelAdmin):
        list_per_page = 7

    admin.site.unregister(Switch)
    admin.site.register(Switch, HostSwitchAdmin)
    try:
        _record_in_the_registered_admins()
        registered = admin.site.get_model_admin(Switch)
        assert isinstance(registered, HostSwitchAdmin)
        assert isinstance(registered, RolloutSwitchAdmin)
        assert registered.list_per_page == 7
        _record_in_the_registered_admins()  # idempotent: not mixed in twice
        assert type(admin.site.get_model_admin(Switch)) is type(registered)
    finally:
        admin.site.unregister(Switch)
        admin.site.register(Switch, ours)
