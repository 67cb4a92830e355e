from django.apps import AppConfig


class CollectorAppConfig(AppConfig):
    """The collector pipeline (`manage.py collect`): observe, record, samples, mirror,
    alert evaluation. No models: it writes the inventory's and the journal's rows."""

    name = "console.collector"
    label = "collector"
