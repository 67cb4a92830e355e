"""Websocket routes. Each app appends its consumers here (the live dashboard comes first)."""

from django.urls import URLPattern, path

from console.dashboard.consumers import EventsConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/events/", EventsConsumer.as_asgi(), name="ws-events"),
]
