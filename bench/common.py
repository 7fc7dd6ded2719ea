"""What the benchmark scripts share."""

# The columns the scripts fill with COPY, in the order their rows are built.
EVENT_COLUMNS = (
    "credential_id",
    "user_id",
    "calendar_id",
    "google_event_id",
    "etag",
    "status",
    "summary",
    "start_time",
    "end_time",
    "timezone",
    "is_all_day",
    "transparency",
    "self_response_status",
    "recurring_event_id",
    "created_at",
    "updated_at",
    "google_created_at",
    "google_updated_at",
    "sequence",
    "ical_uid",
)
