"""How a node shows its metrics: the JSON summary fields and the Prometheus exposition.

Everything here only reads rollups (daemon/rollups.py, which is bound by state-machine
compatibility); nothing here runs inside a replicated method, so it can change freely.

* `summarize` and `quantile_ms`: the runbook's JSON fields (``/metrics``, ``/metrics/7d``…).
* `render_prometheus`: turns a plain snapshot dict (built by the reporting layer) into
  the Prometheus text format or OpenMetrics, through prometheus_client so escaping
  and format details are the library's problem, not ours.

Replication-lag naming scheme (the runbook alerts on ``daemon_raft_replication_lag_ms > 100``):

``daemon_raft_replication_lag_ms{peer="<node name>"}`` only: one series per peer this
node knows a lag for (the leader: every follower; a follower: itself, which keeps the
signal when the leader cannot see it). The family carries no unlabelled "max" series, so
the runbook expression fires once per lagging (reporter, peer) pair and names the peer;
a per-node maximum is ``max by (instance) (daemon_raft_replication_lag_ms)`` in PromQL.
(A separate ``..._max_ms`` family would only duplicate that and add one more name that
``promtool check metrics`` flags for its abbreviated unit.)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from daemon.rollups import (
    BUCKETS_MS,
    COUNT,
    FAILURE,
    HIST,
    STATUS_SLOT,
    STATUSES,
    SUCCESS,
    SUM,
    TIMEOUT,
    is_rollup,
    new_rollup,
)


def quantile_ms(hist: list[int], q: float) -> float:
    """Estimate the ``q`` quantile (0..1) from non-cumulative bucket counts.

    Same method as Prometheus ``histogram_quantile``: find the bucket holding the rank
    and interpolate linearly inside it (the first bucket starts at 0); a rank in the
    +Inf bucket returns the last finite bound. Returns 0.0 for an empty histogram.
    ``q`` outside 0..1 is clamped rather than returning ±Inf, so the value stays valid JSON.
    """
    if q != q:  # NaN
        return 0.0
    q = min(max(q, 0.0), 1.0)
    total = sum(hist)
    if total <= 0:
        return 0.0
    rank = q * total
    cumulative = 0
    for i, count in enumerate(hist):
        previous = cumulative
        cumulative += count
        # count > 0 also skips empty leading buckets when q == 0 (no 0/0 division).
        if count <= 0 or cumulative < rank:
            continue
        if i >= len(BUCKETS_MS):
            return float(BUCKETS_MS[-1])
        lower = 0.0 if i == 0 else float(BUCKETS_MS[i - 1])
        upper = float(BUCKETS_MS[i])
        return lower + (upper - lower) * (rank - previous) / count
    return float(BUCKETS_MS[-1])


def summarize(rollup: list) -> dict:
    """Return the JSON summary fields of the runbook (``/metrics``, ``/metrics/7d``, …).

    ``successRate`` is 100.0 when there were no executions: nothing failed, so nothing
    breached the SLO, and the runbook's post-upgrade gate (``successRate > 98``) and SLO
    report must not fail on an idle or freshly restarted cluster. It also avoids 0/0.
    """
    count = rollup[COUNT]
    errors = rollup[FAILURE] + rollup[TIMEOUT]
    hist = rollup[HIST]
    return {
        "totalOperations": count,
        "successCount": rollup[SUCCESS],
        "errorCount": errors,
        "timeoutCount": rollup[TIMEOUT],
        "successRate": round(rollup[SUCCESS] * 100.0 / count, 2) if count else 100.0,
        "avgDuration": round(rollup[SUM] / count, 3) if count else 0.0,
        "p95Duration": round(quantile_ms(hist, 0.95), 3),
        "p99Duration": round(quantile_ms(hist, 0.99), 3),
    }


def wants_prometheus(accept: str) -> bool:
    """True when an Accept header asks for a Prometheus format rather than JSON.

    Prometheus scrapers send ``application/openmetrics-text`` and/or ``text/plain``;
    browsers and curl send ``*/*`` or ``text/html``, which keep getting JSON (the
    runbook pipes ``curl .../metrics`` into jq).
    """
    for part in (accept or "").split(","):
        media = part.split(";")[0].strip().lower()
        if media in ("text/plain", "application/openmetrics-text"):
            return True
    return False


def _num(mapping: Mapping[str, Any], key: str, default: float = 0) -> float:
    # A snapshot built during startup may lack sections; a scrape must still succeed.
    value = mapping.get(key, default)
    try:
        result = float(value)
    except (TypeError, ValueError):
        return float(default)
    return result if math.isfinite(result) else float(default)


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _section(snapshot: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = snapshot.get(key)
    return value if isinstance(value, Mapping) else {}


def _rollup_or_empty(value: Any) -> list:
    # A malformed rollup would emit a histogram without its +Inf bucket, which
    # Prometheus rejects for the whole scrape; an empty one keeps the other metrics.
    return value if is_rollup(value) else new_rollup()


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _execution_families(local: list) -> Iterator[Metric]:
    statuses = CounterMetricFamily(
        "daemon_operations_total",
        "Operation executions run by this node since it started, by final status.",
        labels=["status"],
    )
    for status in STATUSES:
        statuses.add_metric([status], local[STATUS_SLOT[status]])
    yield statuses
    # Label-free on purpose: the runbook alerts on rate(daemon_operations_failed_total[5m]).
    yield _counter(
        "daemon_operations_failed_total",
        "Operation executions run by this node that ended in failure or timeout.",
        local[FAILURE] + local[TIMEOUT],
    )
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*BUCKETS_MS, math.inf), local[HIST], strict=False):
        cumulative += count
        buckets.append((floatToGoString(bound), cumulative))
    yield HistogramMetricFamily(
        "daemon_operation_duration_ms",
        "Duration of operation executions run by this node, in milliseconds.",
        buckets=buckets,
        sum_value=local[SUM],
    )


def _raft_families(raft: Mapping[str, Any]) -> Iterator[Metric]:
    yield _gauge("daemon_raft_term", "Current Raft term seen by this node.", _num(raft, "term"))
    yield _gauge(
        "daemon_raft_commit_index",
        "Highest Raft log index this node knows to be committed.",
        _num(raft, "commitIndex"),
    )
    yield _gauge(
        "daemon_raft_applied_index",
        "Highest Raft log index applied to this node's state machine.",
        _num(raft, "appliedIndex"),
    )
    yield _gauge(
        "daemon_raft_is_leader",
        "1 if this node is the Raft leader, else 0.",
        1 if raft.get("isLeader") else 0,
    )
    yield _gauge(
        "daemon_raft_has_quorum",
        "1 if this node is in contact with a majority of the cluster, else 0.",
        1 if raft.get("hasQuorum") else 0,
    )
    yield _gauge(
        "daemon_cluster_size", "Number of Raft cluster members.", _num(raft, "clusterSize")
    )
    yield _counter(
        "daemon_failover_total",
        "Raft leader changes recorded in the replicated state (cluster-wide).",
        _num(raft, "failoverCount"),
    )
    lag = GaugeMetricFamily(
        "daemon_raft_replication_lag_ms",
        "Replication lag per peer in milliseconds as seen by this node "
        "(the leader reports every follower; a follower reports itself).",
        labels=["peer"],
    )
    lags = raft.get("replicationLagMs")
    if isinstance(lags, Mapping):
        # Sorted so repeated scrapes produce byte-identical output for identical state.
        for peer in sorted(lags, key=str):
            value = lags[peer]
            # Unknown lag (None) is left out rather than reported as a reassuring 0.
            if _is_finite_number(value):
                lag.add_metric([str(peer)], float(value))
    yield lag


def _node_families(snapshot: Mapping[str, Any]) -> Iterator[Metric]:
    executor = _section(snapshot, "executor")
    yield _gauge(
        "daemon_executions_active",
        "Executions currently running on this node.",
        _num(executor, "active"),
    )
    yield _gauge(
        "daemon_queue_depth",
        "Executions waiting in this node's queue.",
        _num(executor, "queued"),
    )
    yield _gauge(
        "daemon_queue_capacity",
        "Maximum number of executions this node's queue holds before answering 429.",
        _num(executor, "capacity"),
    )
    yield _gauge(
        "daemon_draining",
        "1 if this node is draining (takes no new executions), else 0.",
        1 if executor.get("draining") else 0,
    )
    cache = _section(snapshot, "cache")
    yield _gauge("daemon_cache_size", "Entries in this node's result cache.", _num(cache, "size"))
    yield _counter(
        "daemon_cache_hits_total", "Result cache hits on this node.", _num(cache, "hits")
    )
    yield _counter(
        "daemon_cache_misses_total", "Result cache misses on this node.", _num(cache, "misses")
    )
    yield _gauge(
        "daemon_raft_journal_bytes",
        "Size of this node's Raft journal file in bytes.",
        _num(snapshot, "journalBytes"),
    )
    yield _gauge(
        "daemon_data_dir_bytes",
        "Total size of this node's data directory in bytes.",
        _num(snapshot, "dataDirBytes"),
    )
    yield _gauge(
        "daemon_uptime_seconds",
        "Seconds since this node's process started.",
        _num(snapshot, "uptimeSeconds"),
    )
    info = InfoMetricFamily(
        "daemon_build", "Version, name, release, package and commit of this node (always 1)."
    )
    built = _section(snapshot, "build")
    info.add_metric(
        [],
        {
            "version": str(snapshot.get("version", "")),
            "node": str(snapshot.get("node", "")),
            "release": str(built.get("release", "")),
            "package": str(built.get("package", "")),
            "commit": str(built.get("commit", "")),
        },
    )
    yield info


class _SnapshotCollector:
    """Yields metric families from one snapshot; registered in a throw-away registry."""

    def __init__(self, snapshot: Mapping[str, Any]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot
        # The cluster-wide rollup is deliberately not exported: every node would report
        # the same lifetime totals, and sum() over instances would count them N times.
        yield from _execution_families(_rollup_or_empty(snapshot.get("local")))
        yield from _raft_families(_section(snapshot, "raft"))
        yield from _node_families(snapshot)

    def describe(self) -> list[Metric]:
        # Empty describe() tells the registry not to call collect() at registration time.
        return []


def render_prometheus(snapshot: dict, accept: str = "") -> tuple[bytes, str]:
    """Render ``snapshot`` for a scrape; returns ``(body, content_type)``.

    The format follows the Accept header as prometheus_client negotiates it:
    OpenMetrics when ``application/openmetrics-text`` is asked for, else the classic
    text format (version 0.0.4).
    """
    # A fresh registry per scrape: the values live in the snapshot, not in global
    # metric objects, so there is no state to reset or to leak between tests.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
