"""The audit page's query: journal rows filtered by cluster, actor, kind and time,
newest first, paged by id (keyset, so any page costs one index range scan)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import forms
from django.db.models import QuerySet

from console.events.models import Event

PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    cluster = forms.CharField(required=False, max_length=63)
    actor = forms.CharField(required=False, max_length=150)
    kind = forms.CharField(
        required=False, max_length=64, help_text="exact kind, or a prefix ending in '.'"
    )
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


@dataclass
class Page:
    rows: list[Event]
    older_than: int | None  # ?before= for the next (older) page


def filtered(data: dict[str, Any]) -> QuerySet[Event]:
    rows = Event.objects.select_related("cluster")
    if data.get("cluster"):
        rows = rows.filter(cluster__name=data["cluster"])
    if data.get("actor"):
        rows = rows.filter(actor=data["actor"])
    kind = data.get("kind") or ""
    if kind.endswith("."):
        rows = rows.filter(kind__startswith=kind)  # "alert." = every alert transition
    elif kind:
        rows = rows.filter(kind=kind)
    since: datetime | None = data.get("since")
    until: datetime | None = data.get("until")
    if since:
        rows = rows.filter(at__gte=since)
    if until:
        rows = rows.filter(at__lt=until)
    return rows


def page(data: dict[str, Any], size: int = PAGE_SIZE) -> Page:
    rows = filtered(data)
    if data.get("before"):
        rows = rows.filter(id__lt=data["before"])
    chunk = list(rows.order_by("-id")[: size + 1])
    older = chunk[size - 1].id if len(chunk) > size else None
    return Page(rows=chunk[:size], older_than=older)


def outcome(event: Event) -> str:
    """One word on how it ended, where the payload says: status, refusal or error."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    if payload.get("reasons"):
        return "refused"
    if payload.get("error"):
        return "failed"
    return str(payload.get("status") or payload.get("state") or "")
