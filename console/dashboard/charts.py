"""Chart series for the dashboard: the last N minutes of Sample rows, as columns.

uPlot wants columns (x values, then one array per series); nulls leave gaps, which is
the truth when the collector had no value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from console.clusters.models import Cluster, Sample

MAX_MINUTES = 24 * 60
# At one sample a second an hour is 3,600 points: thin out beyond this many.
MAX_POINTS = 1200
SERIES = ("replication_lag_ms", "executions_per_s", "p95_ms")


def series(cluster: Cluster, minutes: int) -> dict[str, Any]:
    minutes = max(1, min(minutes, MAX_MINUTES))
    since = timezone.now() - timedelta(minutes=minutes)
    rows = list(
        Sample.objects.filter(cluster=cluster, at__gte=since)
        .order_by("at")
        .values_list("at", *SERIES)
    )
    step = max(1, -(-len(rows) // MAX_POINTS))  # ceil: keep every step-th row
    kept = rows[::step]
    columns: dict[str, Any] = {"t": [round(row[0].timestamp(), 3) for row in kept]}
    for i, name in enumerate(SERIES, start=1):
        columns[name] = [row[i] for row in kept]
    return {"cluster": cluster.name, "minutes": minutes, "points": len(kept), **columns}
