"""The Celery app: `celery -A console worker` finds it here.

Configuration is the CELERY_* block of console/settings.py. With the default filesystem
broker the queue lives in var/broker, so a worker runs with no broker server.
"""

import os
import sys
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _create_filesystem_broker_folders(sender: Celery, **kwargs: object) -> None:
    # kombu's filesystem transport expects its folders to exist already.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)


def _exit_on_settings_error() -> None:
    """Load settings now, so a misconfigured worker stops with one line, not a traceback."""
    from django.conf import settings

    from console.env import SettingsError

    try:
        settings.INSTALLED_APPS  # noqa: B018 - the access is the point
    except SettingsError as err:
        sys.exit(f"console: configuration error: {err}")


# Only under the celery CLI: elsewhere (manage.py, daphne) the entry point reports it.
if "celery" in Path(sys.argv[0]).parts:
    _exit_on_settings_error()
