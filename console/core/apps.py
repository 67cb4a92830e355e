from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Below every app: roles, API types, errors, the admin bootstrap; and the `up`
    runner with the helpers it needs."""

    name = "console.core"
    label = "core"
