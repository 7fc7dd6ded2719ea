import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CalcacheConfig(AppConfig):
    name = "calcache"
    verbose_name = _("Calendar cache")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from calcache import checks, metrics  # noqa: F401  (checks registers the system checks)
        from calcache.availability import stats

        request_started.connect(stats.request_started, dispatch_uid="calcache-stats-start")
        request_finished.connect(stats.request_finished, dispatch_uid="calcache-stats-finish")
        if metrics.available():
            if problem := metrics.multiprocess_dir_problem():
                # calcache.W011 says so too; the site runs, uncounted.
                logging.getLogger("calcache.metrics").error("Metrics are off: %s.", problem)
                return
            from calcache.metrics import collectors

            collectors.connect()
