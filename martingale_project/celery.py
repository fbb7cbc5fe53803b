"""The Celery application; tasks are discovered in the installed apps."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "martingale_project.settings")

app = Celery("martingale_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
