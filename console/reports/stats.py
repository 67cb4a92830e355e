"""The arithmetic the three reports share: execution figures over a window (success
rate, percentiles), downtime from the journal's quorum events, failovers.

Every ratio returns None when its denominator is zero: an idle window has no success
rate, it does not have 0 % or a ZeroDivisionError (the runbook's jq divides by zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from console.clusters.models import Cluster, Execution
from console.events.models import Event

SUCCESS = "success"  # daemon/contract.py EXECUTION_STATUSES: success, failure, timeout


@dataclass(frozen=True)
class ExecutionFigures:
    operations: int
    errors: int
    success_rate_pct: float | None
    p95_ms: float | None
    p99_ms: float | None


def ratio_pct(part: float, whole: float) -> float | None:
    return None if whole <= 0 else 100.0 * part / whole


def executions_in(cluster: Cluster, start: datetime, end: datetime) -> QuerySet[Execution]:
    return Execution.objects.filter(cluster=cluster, finished_at__gte=start, finished_at__lt=end)


def percentile_ms(executions: QuerySet[Execution], fraction: float, count: int) -> float | None:
    """The nearest-rank percentile, computed by the database (one ordered row fetched),
    so a month of executions is never loaded into memory."""
    if count == 0:
        return None
    rank = max(1, math.ceil(fraction * count))
    values = executions.order_by("duration_ms").values_list("duration_ms", flat=True)
    return float(values[rank - 1])


def execution_figures(cluster: Cluster, start: datetime, end: datetime) -> ExecutionFigures:
    executions = executions_in(cluster, start, end)
    total = executions.count()
    errors = executions.exclude(status=SUCCESS).count() if total else 0
    return ExecutionFigures(
        operations=total,
        errors=errors,
        success_rate_pct=ratio_pct(total - errors, total),
        p95_ms=percentile_ms(executions, 0.95, total),
        p99_ms=percentile_ms(executions, 0.99, total),
    )


def watched_window(cluster: Cluster, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The part of [start, end) the console watched: nothing before the cluster's row
    existed is known, and nothing after now. Empty windows come back with start == end."""
    begin = max(start, cluster.created_at)
    return begin, max(begin, end)


def downtime_s(cluster: Cluster, start: datetime, end: datetime) -> float:
    """Seconds in [start, end) the cluster had no quorum, from the collector's
    `cluster.quorum` events (it appends one on every change). Before the first event
    the state is the last one journaled before `start`, or "up" if there is none."""
    if end <= start:
        return 0.0
    before = (
        Event.objects.filter(cluster=cluster, kind="cluster.quorum", at__lt=start)
        .order_by("-id")
        .values_list("payload", flat=True)
        .first()
    )
    up = bool(before.get("has_quorum", True)) if before else True
    down_since = None if up else start
    total = 0.0
    changes = Event.objects.filter(
        cluster=cluster, kind="cluster.quorum", at__gte=start, at__lt=end
    ).order_by("id")
    for at, payload in changes.values_list("at", "payload"):
        has_quorum = bool(payload.get("has_quorum"))
        if not has_quorum and down_since is None:
            down_since = at
        elif has_quorum and down_since is not None:
            total += (at - down_since).total_seconds()
            down_since = None
    if down_since is not None:
        total += (end - down_since).total_seconds()
    return total


def failovers(cluster: Cluster, start: datetime, end: datetime) -> int:
    """Leader changes away from a known leader (X -> none, or X -> Y). The first
    election the console sees (none -> X) and the new leader after a loss
    (none -> Y) are not failovers of their own."""
    changes = Event.objects.filter(
        cluster=cluster, kind="leader.changed", at__gte=start, at__lt=end
    )
    return sum(1 for payload in changes.values_list("payload", flat=True) if payload.get("from"))
