from django.apps import AppConfig


class CalcacheConfig(AppConfig):
    name = "calcache"
    verbose_name = "Calendar cache"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from calcache import checks, metrics  # noqa: F401  (checks registers the system checks)
        from calcache.availability import stats

        request_started.connect(stats.request_started, dispatch_uid="calcache-stats-start")
        request_finished.connect(stats.request_finished, dispatch_uid="calcache-stats-finish")
        if metrics.available():
            from calcache.metrics import collectors

            collectors.connect()
