from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Feature flags"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from flags import checks, signals

        signals.connect()
        checks.register()
