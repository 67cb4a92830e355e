from django.apps import AppConfig


class EventsConfig(AppConfig):
    """The journal: Event rows, appending, reading after an id, the kinds registry and
    the audit page. Stands on the inventory only."""

    name = "console.events"
    label = "events"
