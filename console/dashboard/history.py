"""The execution history page's query: filters plus keyset pagination.

Keyset (`seq < before`, newest first) instead of OFFSET, so page 1,000 of a
million rows costs what page 1 costs: one index range scan on
(cluster, <filter>, -seq), or on (cluster, finished_at) for a time range.
No COUNT(*) for the same reason. Links carry a seq either way.

The API (console/dashboard/api.py) pages by seq alone, time range or not:
`newest_by_seq` orders it so that PostgreSQL can read it from an index either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connections
from django.db.models import BigIntegerField, F, Func, Max, Q, QuerySet, Subquery, Value
from django.db.models.functions import Cast

from console.clusters.models import Cluster, Execution

PAGE_SIZE = 50
MAX_SEQ = 2**63 - 1
EXACT_DISTANCE = 2**53


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


def cluster_key(cluster: Cluster | str) -> int | Subquery:
    """The cluster's id: its pk, or for a name the id looked up inside the query that
    uses it (one round trip fewer for the API; a name that matches nothing gives NULL,
    which matches no row)."""
    if isinstance(cluster, Cluster):
        return cluster.pk
    return Subquery(Cluster.objects.filter(name=cluster).values("pk")[:1])


def filtered(cluster: Cluster | str, filters: Filters, gist: bool = False) -> QuerySet[Execution]:
    # `gist`: the cluster as a bigint literal, which btree_gist can match in its index
    # (it has no int8 = int4 operator; a b-tree does not care).
    key = cluster_key(cluster)
    rows = Execution.objects.filter(cluster_id=_bigint(key) if gist else key)
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


class SeqDistance(Func):
    """`seq <-> bound`, btree_gist's distance (migration clusters 0007): below `bound`,
    nearest first is newest first, and that order a GiST index can give (KNN)."""

    template = "(%(expressions)s)"
    arg_joiner = " <-> "
    output_field = BigIntegerField()

    def __init__(self, bound: int) -> None:
        super().__init__(F("seq"), _bigint(bound))


def newest_by_seq(
    cluster: Cluster | str, filters: Filters, before: int | None
) -> QuerySet[Execution]:
    """The filtered rows with seq < `before` (if given), newest (highest seq) first;
    `cluster` may be a name, looked up within the same query (see cluster_key).

    Without a time range each filter combination has its (cluster, <filters>, -seq)
    index. With one, no b-tree serves "in this time range, by seq": walking seq down
    reads every row newer than the range (10M at "until last month" over 10M rows, 13 s),
    reading the range then sorting costs the whole range. On PostgreSQL the GiST index
    on (cluster, finished_at, seq) finds the range's rows nearest `before` first, which
    is the same order (seq is unique per cluster, so no ties to break)."""
    rows = filtered(cluster, filters)
    if before is not None:
        rows = rows.filter(seq__lt=before)
    if not (filters.since or filters.until) or connections[rows.db].vendor != "postgresql":
        return rows.order_by("-seq")
    rows = filtered(cluster, filters, gist=True)
    # The GiST scan ranks by distance as a float8: exact only below 2**53, so the bound
    # is the newest seq + 1 when `before` is absent or beyond it (one index probe).
    if before is None or before > EXACT_DISTANCE:
        newest = Execution.objects.filter(cluster_id=cluster_key(cluster)).aggregate(
            top=Max("seq")
        )["top"]
        before = min(before if before is not None else MAX_SEQ, (newest or 0) + 1)
    if before > EXACT_DISTANCE:  # seqs this large never happen; stay exact anyway
        return rows.order_by("-seq")
    # bigint literals: btree_gist has no int8 < int4 operator, so `seq < 500` would be
    # checked row by row, not in the index.
    return rows.filter(seq__lt=_bigint(before)).order_by(SeqDistance(before))


def _bigint(value: int | Subquery) -> Cast:
    return Cast(value if isinstance(value, Subquery) else Value(value), BigIntegerField())


def _keys(filters: Filters) -> tuple[str, ...]:
    """The page order. A time range orders by finish time (then seq): the (cluster,
    finished_at) index then finds the range directly, where walking seq down from the
    newest row would first pass every row finished after the range."""
    return ("finished_at", "seq") if filters.since or filters.until else ("seq",)


def _position(cluster: Cluster, keys: tuple[str, ...], seq: int) -> tuple | None:
    if keys == ("seq",):
        return (seq,)
    return Execution.objects.filter(cluster=cluster, seq=seq).values_list(*keys).first()


def _beyond(keys: tuple[str, ...], position: tuple, older: bool) -> Q:
    """Rows strictly older (or newer) than `position` in `keys` order."""
    op = "lt" if older else "gt"
    if len(keys) == 1:
        return Q(**{f"{keys[0]}__{op}": position[0]})
    (first, second), (a, b) = keys, position
    # `first <= a` alone is an index range; the OR only trims ties.
    return Q(**{f"{first}__{op}e": a}) & (
        Q(**{f"{first}__{op}": a}) | Q(**{first: a, f"{second}__{op}": b})
    )


def _any_beyond(
    rows: QuerySet[Execution], keys: tuple[str, ...], row: Execution, older: bool
) -> bool:
    # A positive range (never exclude(): NOT (...) defeats the index and scans the table).
    position = tuple(getattr(row, key) for key in keys)
    return rows.filter(_beyond(keys, position, older)).exists()


def page(
    cluster: Cluster,
    filters: Filters,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """Newest first. `before=seq`: the page older than that row; `after=seq`: the newer."""
    rows = filtered(cluster, filters)
    keys = _keys(filters)
    newest_first = [f"-{key}" for key in keys]
    anchor = before if after is None else after
    position = _position(cluster, keys, anchor) if anchor is not None else None
    if anchor is not None and position is None:
        return Page(rows=[], newer_than=None, older_than=None)
    if after is not None:
        # The page just above `after`: read upwards, then show it newest first.
        chunk = list(rows.filter(_beyond(keys, position, older=False)).order_by(*keys)[: size + 1])
        has_newer = len(chunk) > size
        chunk = list(reversed(chunk[:size]))
        has_older = bool(chunk) and _any_beyond(rows, keys, chunk[-1], older=True)
    else:
        older = rows.filter(_beyond(keys, position, older=True)) if position else rows
        chunk = list(older.order_by(*newest_first)[: size + 1])
        has_older = len(chunk) > size
        chunk = chunk[:size]
        has_newer = bool(chunk) and _any_beyond(rows, keys, chunk[0], older=False)
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
