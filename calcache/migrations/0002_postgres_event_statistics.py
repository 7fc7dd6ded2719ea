"""PostgreSQL only: extended statistics for the availability query.

credential_id and calendar_id are strongly correlated (a calendar belongs to one
credential). Without this the planner multiplies their selectivities, expects
almost no rows and picks the wrong index; see README "Indexes".
"""

from django.db import migrations

CREATE = (
    "CREATE STATISTICS IF NOT EXISTS calcache_event_credential_calendar_stats "
    "(dependencies, ndistinct) ON credential_id, calendar_id FROM calcache_calendarevent"
)
DROP = "DROP STATISTICS IF EXISTS calcache_event_credential_calendar_stats"


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("calcache", "0001_initial")]

    operations = [migrations.RunPython(create_statistics, drop_statistics)]
