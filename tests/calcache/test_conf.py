"""calcache.conf reads settings lazily, with the documented defaults."""

from __future__ import annotations

from django.test import override_settings

from calcache.conf import DEFAULTS, conf


def test_defaults_match_the_interface() -> None:
    assert conf.sync_past_days == 30
    assert conf.sync_future_days == 180
    assert conf.retention_days == 90
    assert conf.google_api_url == "https://www.googleapis.com/calendar/v3/"
    assert conf.google_token_uri == "https://oauth2.googleapis.com/token"
    assert conf.google_auth_uri == "https://accounts.google.com/o/oauth2/auth"
    assert conf.webhook_token == "" and not conf.webhooks_enabled


def test_override_settings_is_seen_at_once() -> None:
    with override_settings(CALCACHE_SYNC_PAST_DAYS=7, CALCACHE_GOOGLE_API_URL="http://h:1/v3"):
        assert conf.sync_past_days == 7
        assert conf.google_api_url == "http://h:1/v3/"
    assert conf.sync_past_days == 30


def test_every_setting_has_a_property() -> None:
    names = {name for name in dir(type(conf)) if not name.startswith("_")}
    for setting in DEFAULTS:
        assert setting.removeprefix("CALCACHE_").lower() in names


def test_metrics_token_is_off_by_default() -> None:
    assert conf.metrics_token == ""
    with override_settings(CALCACHE_METRICS_TOKEN="s3cret"):
        assert conf.metrics_token == "s3cret"
