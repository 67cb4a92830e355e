"""The environment of a fresh checkout running on embedded defaults (what `make run` uses
when nothing is configured): SQLite, the in-memory channel layer, the filesystem broker.

For processes started to check or measure the console (tests, benchmarks): whatever the
calling shell or CI exports, they see none of the service settings unless given.
"""

from __future__ import annotations

import os

# What points a console process at services and a deployment; CI exports some of them.
SERVICE_SETTINGS = frozenset(
    {
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "CONSOLE_ENV",
        "DEBUG",
        "DJANGO_SETTINGS_MODULE",
    }
)


def embedded_defaults_env(**overrides: str) -> dict[str, str]:
    """This process's environment without the service settings, plus `overrides`."""
    env = {key: value for key, value in os.environ.items() if key not in SERVICE_SETTINGS}
    env.update(overrides)
    return env
