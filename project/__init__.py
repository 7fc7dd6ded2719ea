# Load the Celery app with Django, so shared tasks bind to it (Celery's Django recipe).
from project.celery import app as celery_app

__all__ = ("celery_app",)
