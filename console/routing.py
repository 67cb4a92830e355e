"""Websocket routes. Each app appends its consumers here (the live dashboard comes first)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
