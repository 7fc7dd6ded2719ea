"""PostgreSQL only: detach waffle's own (swapped-out, unused) flag tables from auth.

waffle's first migration creates waffle_flag, waffle_flag_users and
waffle_flag_groups even when WAFFLE_FLAG_MODEL points elsewhere. Their foreign
keys to the user and group tables make PostgreSQL refuse ``TRUNCATE`` of those
tables (``manage.py flush``, transactional tests), because Django does not list
tables of swapped models. The tables stay (waffle's later migrations may touch
them); only their links to auth go.
"""

from django.db import migrations

TABLES = ("waffle_flag_users", "waffle_flag_groups")


def detach(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' "
                "AND conrelid = to_regclass(%s) AND confrelid <> to_regclass('waffle_flag')",
                [table],
            )
            for (name,) in cursor.fetchall():
                schema_editor.execute(
                    f"ALTER TABLE {schema_editor.quote_name(table)} "
                    f"DROP CONSTRAINT {schema_editor.quote_name(name)}"
                )


class Migration(migrations.Migration):
    dependencies = [
        ("flags", "0002_calendar_cache_flags"),
        ("waffle", "0004_update_everyone_nullbooleanfield"),
    ]

    operations = [migrations.RunPython(detach, migrations.RunPython.noop)]
