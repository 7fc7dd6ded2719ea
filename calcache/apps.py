from django.apps import AppConfig


class CalcacheConfig(AppConfig):
    name = "calcache"
    verbose_name = "Calendar cache"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calcache import checks  # noqa: F401  (registers the system checks)
