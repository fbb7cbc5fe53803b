"""The Celery application: configured from Django's CELERY_* settings, tasks discovered in the
installed apps, the beat schedule in settings.CELERY_BEAT_SCHEDULE."""
import logging
import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "martingale_project.settings")

logger = logging.getLogger(__name__)

app = Celery("martingale_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

FILESYSTEM_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


@app.on_after_configure.connect
def make_folders(sender: Celery, **kwargs) -> None:
    """Create the folders the worker and beat write to: kombu's filesystem transport (the default
    broker) needs its folders to exist, beat its schedule file's folder."""
    conf = sender.conf
    folders = [Path(conf.beat_schedule_filename).parent]
    if (conf.broker_url or "").startswith("filesystem://"):
        options = conf.broker_transport_options or {}
        folders += [Path(options[key]) for key in FILESYSTEM_FOLDERS if options.get(key)]
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a read-only checkout whose beat uses --schedule elsewhere
            logger.warning("cannot create %s: %s", folder, exc)
