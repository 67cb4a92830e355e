"""/api/events: the journal, cursor-paged by id.

Ids only grow, so "everything after id N" pages without duplicates however many
events are appended between two calls: pass the answer's `next_after` back as `after`.

Ids are handed out at insert but become visible at commit, so on PostgreSQL id 11 can
be visible while id 10's transaction is still open; a cursor moved past 11 would skip
10 forever. A page therefore stops before a hole in the ids while the event after the
hole is younger than SETTLE_S: the hole is then probably a transaction in flight. An
older hole is a rolled-back insert and is stepped over.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from console.core.api_types import BigId, Text
from console.events.models import Event

router = Router(tags=["events"])

MAX_LIMIT = 1000
SETTLE_S = 5.0


class EventOut(Schema):
    id: int
    at: datetime
    cluster: str | None
    actor: str
    kind: str
    payload: dict[str, Any]


class EventPage(Schema):
    items: list[EventOut]
    next_after: int = Field(description="pass as `after` to get the events that follow")


class EventFilters(Schema):
    after: BigId = Field(0, description="only events with a larger id")
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
    cluster: Text | None = Field(None, max_length=63, description="cluster name")
    kind: Text | None = Field(
        None, max_length=64, description="exact kind, or a prefix like `alert.`"
    )
    actor: Text | None = Field(None, max_length=150)


def events_page(filters: EventFilters) -> tuple[list[Event], int]:
    """One page of events after `filters.after`, oldest first, and the cursor for the next."""
    events = Event.objects.select_related("cluster").filter(id__gt=filters.after)
    if filters.cluster:
        events = events.filter(cluster__name=filters.cluster)
    if filters.kind:
        if filters.kind.endswith("."):
            events = events.filter(kind__startswith=filters.kind)
        else:
            events = events.filter(kind=filters.kind)
    if filters.actor:
        events = events.filter(actor=filters.actor)
    horizon = _young_hole(filters.after)
    if horizon is not None:
        events = events.filter(id__lt=horizon)
    page = list(events.order_by("id")[: filters.limit])
    return page, (page[-1].id if page else filters.after)


def _young_hole(after: int) -> int | None:
    """The id just past the first hole among recent ids after `after`, if there is one.

    Only events younger than SETTLE_S are looked at (a handful), whatever the filters,
    because a hole is a property of the whole journal, not of a filtered view.
    """
    settled = timezone.now() - timedelta(seconds=SETTLE_S)
    young = list(
        Event.objects.filter(id__gt=after, at__gt=settled)
        .order_by("id")
        .values_list("id", flat=True)[:MAX_LIMIT]
    )
    if not young:
        return None
    older = Event.objects.filter(id__lt=young[0]).order_by("-id").values_list("id", flat=True)
    anchor = older.first()
    # Nothing older at all: the journal starts here, so there is no hole before it.
    expected = young[0] if anchor is None else max(anchor, after) + 1
    for event_id in young:
        if event_id != expected:
            return event_id
        expected = event_id + 1
    return None


@router.get("", response=EventPage)
def list_events(request: HttpRequest, filters: Query[EventFilters]) -> dict:
    """Events after `after`, oldest first; follow `next_after` to read on."""
    page, next_after = events_page(filters)
    return {"items": [event.as_dict() for event in page], "next_after": next_after}
