from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The pages (dashboard, fragments, charts, history, operations), the /api/clusters
    router, the nav template tags and the live websocket. No models."""

    name = "console.dashboard"
    label = "dashboard"
