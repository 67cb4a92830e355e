"""Reading the journal in order, each event exactly once, for live feeds.

Ids come from a sequence, but rows become visible in commit order: in PostgreSQL
transaction A can take id 10, B id 11, and B commit first. A reader that jumped to
11 would never see 10. So a reader only advances over a contiguous run of ids and
waits at a hole, until the row after the hole is older than GAP_GRACE_S: then the
hole is a rolled-back insert (sequences never reuse ids) and is skipped. The rule
uses only the rows themselves, so a reconnecting client with `after=N` gets the same
answer as the connection it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from console.events.models import Event

GAP_GRACE_S = 3.0
BATCH = 500


@dataclass
class Batch:
    cursor: int  # every id <= cursor has been decided (sent, filtered out or skipped)
    events: list[Event] = field(default_factory=list)  # the ones to send, in id order
    held: bool = False  # stopped at a hole: read again within GAP_GRACE_S


def head_id() -> int:
    return Event.objects.aggregate(head=Max("id"))["head"] or 0


def read_after(cursor: int, cluster_id: int | None = None, limit: int = BATCH) -> Batch:
    """Events after `cursor` that are safe to send now, filtered to one cluster if given.

    Rows of other clusters still move the cursor; they are read only as ids (cheap).
    Cursor 0 means "from the start": the oldest row begins the run, whatever its id.
    """
    rows = list(
        Event.objects.filter(id__gt=cursor)
        .order_by("id")
        .values_list("id", "at", "cluster_id")[:limit]
    )
    horizon = timezone.now() - timedelta(seconds=GAP_GRACE_S)
    wanted: list[int] = []
    held = False
    for event_id, at, event_cluster in rows:
        if cursor and event_id != cursor + 1 and at > horizon:
            held = True  # a hole that may still be an open transaction: wait for it
            break
        cursor = event_id
        if cluster_id is None or event_cluster == cluster_id:
            wanted.append(event_id)
    events = list(Event.objects.filter(id__in=wanted).select_related("cluster").order_by("id"))
    return Batch(cursor=cursor, events=events, held=held)
