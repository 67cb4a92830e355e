"""The execution history page's query: filters plus keyset pagination on seq.

Keyset (`seq < before`, newest first) instead of OFFSET, so page 1,000 of a
million rows costs what page 1 costs: one index range scan on
(cluster, <filter>, -seq). No COUNT(*) for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from console.clusters.models import Cluster, Execution

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    operation: str = ""
    status: str = ""
    node: str = ""
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Page:
    rows: list[Execution]
    newer_than: int | None  # pass as ?after= for the newer page, if any
    older_than: int | None  # pass as ?before= for the older page, if any


def filtered(cluster: Cluster, filters: Filters) -> QuerySet[Execution]:
    rows = Execution.objects.filter(cluster=cluster)
    if filters.operation:
        rows = rows.filter(operation_id=filters.operation)
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.node:
        rows = rows.filter(node_name=filters.node)
    if filters.since:
        rows = rows.filter(finished_at__gte=filters.since)
    if filters.until:
        rows = rows.filter(finished_at__lt=filters.until)
    return rows


def page(
    cluster: Cluster,
    filters: Filters,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """Newest first. `before=seq`: the page older than seq; `after=seq`: the page newer."""
    rows = filtered(cluster, filters)
    if after is not None:
        # The page just above `after`: read upwards, then show it newest first.
        chunk = list(rows.filter(seq__gt=after).order_by("seq")[: size + 1])
        has_newer = len(chunk) > size
        chunk = list(reversed(chunk[:size]))
        has_older = rows.filter(seq__lte=after).exists()
    else:
        if before is not None:
            rows = rows.filter(seq__lt=before)
        chunk = list(rows.order_by("-seq")[: size + 1])
        has_older = len(chunk) > size
        chunk = chunk[:size]
        has_newer = before is not None and rows.filter(seq__gte=before).exists()
    if not chunk:
        return Page(rows=[], newer_than=None, older_than=None)
    return Page(
        rows=chunk,
        newer_than=chunk[0].seq if has_newer else None,
        older_than=chunk[-1].seq if has_older else None,
    )


def choices(cluster: Cluster) -> dict[str, list[str]]:
    """Values for the filter dropdowns: node names are few; statuses are the daemon's."""
    nodes = sorted(cluster.nodes.values_list("name", flat=True))
    return {"statuses": ["success", "failure", "timeout"], "nodes": nodes}
