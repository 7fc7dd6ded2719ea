"""The tables calcache owns: connected accounts, selected calendars, the SQL event
mirror with its sync tokens, and the legacy JSON cache it replaces.

Index choices for ``CalendarEvent`` are explained in README.md ("Indexes") with
the measurements behind them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from calcache.accounts import crypto

INVALID_REASON_MAX_LENGTH = 500


class Provider(models.TextChoices):
    GOOGLE = "google", "Google"


class Credential(models.Model):
    """One connected calendar account of a user, with its OAuth token encrypted at rest."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_credentials"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.GOOGLE)
    account_email = models.EmailField(
        max_length=254,
        blank=True,
        help_text=_("The account's address; empty until the provider told us."),
    )
    encrypted_token = models.TextField(
        editable=False,
        help_text=_("Fernet-encrypted OAuth token JSON; see calcache.accounts.crypto."),
    )
    invalid = models.BooleanField(
        default=False, help_text=_("Set when the provider refused the token; cleared on reconnect.")
    )
    invalid_reason = models.CharField(max_length=INVALID_REASON_MAX_LENGTH, blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "provider", "account_email"],
                name="calcache_credential_one_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.account_email or '(unknown account)'}"

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs and tracebacks.
        return f"<Credential id={self.pk} user_id={self.user_id} provider={self.provider}>"

    @property
    def token(self) -> dict[str, Any]:
        """The decrypted OAuth token (google-auth's authorized-user JSON)."""
        return crypto.decrypt_json(self.encrypted_token)

    @token.setter
    def token(self, value: dict[str, Any]) -> None:
        self.encrypted_token = crypto.encrypt_json(value)

    def save_token(self, token: dict[str, Any]) -> None:
        """Store a token google-auth refreshed (a client's ``on_token_refresh``)."""
        self.token = token
        self.save(update_fields=["encrypted_token", "updated_at"])

    def mark_invalid(self, reason: str) -> None:
        """Record that the provider refused the token; its calendars are skipped until the
        account is connected again."""
        self.invalid = True
        self.invalid_reason = reason[:INVALID_REASON_MAX_LENGTH]
        self.invalidated_at = timezone.now()
        self.save(update_fields=["invalid", "invalid_reason", "invalidated_at", "updated_at"])


class SelectedCalendar(models.Model):
    """A calendar of a credential that the user chose to mirror."""

    credential = models.ForeignKey(
        Credential, on_delete=models.CASCADE, related_name="selected_calendars"
    )
    calendar_id = models.CharField(max_length=255)
    time_zone = models.CharField(
        max_length=100,
        default="UTC",
        help_text=_("IANA zone; all-day events start at its midnight."),
    )
    is_primary = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    dirty_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Set by a push notification; cleared when a sync of the calendar starts."),
    )
    longest_event = models.DurationField(
        default=timedelta(0),
        help_text=_(
            "Longest stored event of this calendar; the availability query's lower bound on "
            "start time. Grows with writes, recomputed by a full sync."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "calendar_id"], name="calcache_selected_calendar_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.calendar_id


class EventStatus(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    TENTATIVE = "tentative", "Tentative"
    CANCELLED = "cancelled", "Cancelled"


class Transparency(models.TextChoices):
    OPAQUE = "opaque", "Busy"
    TRANSPARENT = "transparent", "Free"


class ResponseStatus(models.TextChoices):
    NONE = "", "Not an attendee"
    NEEDS_ACTION = "needsAction", "Needs action"
    DECLINED = "declined", "Declined"
    TENTATIVE = "tentative", "Tentative"
    ACCEPTED = "accepted", "Accepted"


# What "busy" means, in one place: the availability query and its partial
# index must use the very same predicate, or PostgreSQL cannot use the index.
BUSY = (
    ~Q(status=EventStatus.CANCELLED)
    & ~Q(transparency=Transparency.TRANSPARENT)
    & ~Q(self_response_status=ResponseStatus.DECLINED)
)


class CalendarEventQuerySet(models.QuerySet["CalendarEvent"]):
    def busy(self) -> CalendarEventQuerySet:
        """Events that block time: not cancelled, not transparent, not declined by the owner."""
        return self.filter(BUSY)

    def overlapping(
        self, start: datetime, end: datetime, *, longest: timedelta | None = None
    ) -> CalendarEventQuerySet:
        """Events with ``end > start`` and ``start_time < end``.

        ``longest`` (the longest event that can be stored) turns the scan into a
        bounded range on ``start_time``, which is what the index is ordered by.
        """
        qs = self.filter(start_time__lt=end, end_time__gt=start)
        if longest is not None:
            qs = qs.filter(start_time__gte=start - longest)
        return qs


class CalendarEvent(models.Model):
    """One event (or one instance of a recurring series) of a selected calendar."""

    id = models.BigAutoField(primary_key=True)
    # No separate index: the unique constraint below starts with credential_id.
    credential = models.ForeignKey(
        Credential, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    # The host app's userId, always the credential's user. Rows go with their credential
    # (CASCADE above), so no constraint or index here: deleting a user would otherwise
    # scan the whole table for user_id (405 ms at 2M rows) or cost ~5% of upsert speed
    # for an index; see README "Indexes".
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    calendar_id = models.CharField(max_length=255)
    # Google allows ids of up to 1024 characters; instance ids add a suffix.
    google_event_id = models.CharField(max_length=1100)
    etag = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=20, choices=EventStatus.choices, default=EventStatus.CONFIRMED
    )
    summary = models.TextField(blank=True)
    start_time = models.DateTimeField(help_text=_("UTC instant, inclusive."))
    end_time = models.DateTimeField(help_text=_("UTC instant, exclusive."))
    timezone = models.CharField(max_length=100, blank=True)
    is_all_day = models.BooleanField(default=False)
    transparency = models.CharField(
        max_length=20, choices=Transparency.choices, default=Transparency.OPAQUE
    )
    self_response_status = models.CharField(
        max_length=20, choices=ResponseStatus.choices, default=ResponseStatus.NONE, blank=True
    )
    recurring_event_id = models.CharField(max_length=1024, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    google_created_at = models.DateTimeField(null=True, blank=True)
    google_updated_at = models.DateTimeField(null=True, blank=True)
    sequence = models.PositiveIntegerField(default=0)
    ical_uid = models.CharField(max_length=1024, blank=True)

    objects = CalendarEventQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "calendar_id", "google_event_id"],
                name="calcache_event_identity",
            ),
            models.CheckConstraint(
                condition=Q(end_time__gte=models.F("start_time")),
                name="calcache_event_end_after_start",
            ),
        ]
        indexes = [
            # On PostgreSQL: (credential_id, calendar_id, start_time) INCLUDE (end_time)
            # WHERE <busy>, an index-only scan for the availability query. SQLite
            # has no INCLUDE and gets the same partial index without it.
            models.Index(
                fields=["credential", "calendar_id", "start_time"],
                include=["end_time"],
                condition=BUSY,
                name="calcache_event_busy_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.calendar_id}/{self.google_event_id}"

    @property
    def is_busy(self) -> bool:
        return (
            self.status != EventStatus.CANCELLED
            and self.transparency != Transparency.TRANSPARENT
            and self.self_response_status != ResponseStatus.DECLINED
        )


class CalendarSyncToken(models.Model):
    """Where the mirror of one calendar stands: Google's sync token and the window it covers."""

    id = models.BigAutoField(primary_key=True)
    credential = models.ForeignKey(
        Credential, on_delete=models.CASCADE, related_name="sync_tokens", db_index=False
    )
    calendar_id = models.CharField(max_length=255)
    sync_token = models.TextField(blank=True, help_text=_("Empty: the next sync is a full sync."))
    last_sync_at = models.DateTimeField(
        null=True, blank=True, help_text=_("End of the last successful sync.")
    )
    window_start = models.DateTimeField(
        null=True, blank=True, help_text=_("The SQL copy is complete from this instant...")
    )
    window_end = models.DateTimeField(null=True, blank=True, help_text=_("...up to this one."))
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # The sync lock's lease where PostgreSQL advisory locks are not available.
    lock_owner = models.CharField(max_length=32, blank=True, editable=False)
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["credential", "calendar_id"], name="calcache_sync_token_unique"
            ),
        ]
        indexes = [models.Index(fields=["last_sync_at"], name="calcache_sync_token_last_sync")]

    def __str__(self) -> str:
        return f"sync token of {self.calendar_id}"


class CalendarCache(models.Model):
    """The legacy JSON cache: one freeBusy response per widened query key."""

    id = models.BigAutoField(primary_key=True)
    credential = models.ForeignKey(
        Credential, on_delete=models.CASCADE, related_name="json_cache", db_index=False
    )
    key = models.TextField(help_text=_("Canonical JSON of the month-widened freeBusy query."))
    value = models.JSONField(help_text=_("Google's freeBusy response for that query."))
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("legacy JSON cache entry")
        verbose_name_plural = _("legacy JSON cache entries")
        constraints = [
            models.UniqueConstraint(fields=["credential", "key"], name="calcache_json_cache_key"),
        ]
        indexes = [models.Index(fields=["expires_at"], name="calcache_json_cache_expiry")]

    def __str__(self) -> str:
        return f"JSON cache {self.pk} of credential {self.credential_id}"


class AvailabilityStat(models.Model):
    """How availability answers were served, aggregated per minute and source."""

    minute = models.DateTimeField()
    source = models.CharField(max_length=10)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    total_ms = models.FloatField(default=0)
    max_ms = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "source"], name="calcache_stat_minute_source")
        ]

    def __str__(self) -> str:
        return f"{self.source} at {self.minute:%Y-%m-%d %H:%M}"

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.requests if self.requests else 0.0


class CacheComparison(models.Model):
    """One sampled shadow comparison of two sources' answers for the same window."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    source_a = models.CharField(max_length=10, help_text=_("The source that answered."))
    source_b = models.CharField(max_length=10, help_text=_("The source it was compared with."))
    equal = models.BooleanField()
    only_in_a = models.JSONField(default=list, help_text=_("Busy intervals only A had (capped)."))
    only_in_b = models.JSONField(default=list, help_text=_("Busy intervals only B had (capped)."))
    latency_a_ms = models.FloatField()
    latency_b_ms = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="calcache_comparison_user")]

    def __str__(self) -> str:
        verdict = "equal" if self.equal else "MISMATCH"
        return f"{self.source_a} vs {self.source_b}: {verdict}"


class RolloutEvent(models.Model):
    """Audit trail of the rollout: flag changes, automatic rollbacks, retirement."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=50)
    reason = models.TextField(blank=True)
    figures = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]
        # The dashboard shows every account's email and sync errors; staff status alone
        # is not enough (see calcache.views.dashboard).
        permissions = [("view_dashboard", "Can view the calendar cache dashboard")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"


class PushChannel(models.Model):
    """A Google push channel (``events.watch``) delivering a calendar's change notices."""

    selected_calendar = models.ForeignKey(
        SelectedCalendar, on_delete=models.CASCADE, related_name="channels"
    )
    channel_id = models.CharField(max_length=64, unique=True)
    resource_id = models.CharField(max_length=255)
    expiration = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_number = models.BigIntegerField(null=True, blank=True)
    token_hash = models.CharField(
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text=_(
            "SHA-256 (hex) of the channel's own X-Goog-Channel-Token, never the token; "
            "empty for channels opened before per-channel tokens (they carry "
            "CALCACHE_WEBHOOK_TOKEN until renewed). See calcache.push.tokens."
        ),
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["expiration"],
                condition=Q(stopped_at__isnull=True),
                name="calcache_channel_live_expiry",
            )
        ]

    def __str__(self) -> str:
        return f"channel {self.channel_id} of {self.selected_calendar}"

    @property
    def live(self) -> bool:
        return self.stopped_at is None
