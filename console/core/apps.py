from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Project-wide plumbing: the `up` runner and the helpers it needs."""

    name = "console.core"
    label = "core"
