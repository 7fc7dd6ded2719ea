"""Create calcache's rollout flags (both off) and its kill switch (inactive)."""

from django.db import migrations

READ_FLAG = "calendar-cache-sql"
WRITE_FLAG = "calendar-cache-sql-write"
KILL_SWITCH = "calendar-cache-sql-killswitch"
ROLLOUT_KEY = "calendar-cache-sql"


def create(apps, schema_editor):
    Flag = apps.get_model("flags", "Flag")
    Switch = apps.get_model("waffle", "Switch")
    notes = {
        READ_FLAG: "Read availability from the SQL tables (stage 3: dual read).",
        WRITE_FLAG: "Write synced events to the SQL tables (stage 2: dual write).",
    }
    for name, note in notes.items():
        Flag.objects.get_or_create(
            name=name,
            defaults={"everyone": None, "percent": None, "rollout_key": ROLLOUT_KEY, "note": note},
        )
    Switch.objects.get_or_create(
        name=KILL_SWITCH,
        defaults={
            "active": False,
            "note": "While active nobody reads SQL, whatever calendar-cache-sql says.",
        },
    )


def remove(apps, schema_editor):
    apps.get_model("flags", "Flag").objects.filter(name__in=[READ_FLAG, WRITE_FLAG]).delete()
    apps.get_model("waffle", "Switch").objects.filter(name=KILL_SWITCH).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("flags", "0001_initial"),
        ("waffle", "0004_update_everyone_nullbooleanfield"),
    ]

    operations = [migrations.RunPython(create, remove)]
