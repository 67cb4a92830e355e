"""Execution rollups and the Prometheus exposition of a node.

Two halves:

* Pure rollup arithmetic (``new_rollup`` … ``prune_rollups``). These functions run
  inside pysyncobj ``@replicated`` methods, where an exception stalls the whole
  cluster (every node retries the same log entry forever) and any non-determinism
  makes replicas diverge. So they never raise on valid input, read no clock or
  random source, and keep data as plain lists/dicts of ints and floats so the
  SyncObj stays picklable and cheap to snapshot.

* ``render_prometheus``: turns a plain snapshot dict (built by the API layer) into
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
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
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

__all__ = [
    "BUCKETS_MS",
    "STATUSES",
    "add_execution",
    "merge_rollups",
    "minute_of",
    "new_rollup",
    "prune_rollups",
    "quantile_ms",
    "render_prometheus",
    "summarize",
    "wants_prometheus",
    "window_rollup",
]

# Upper bounds in ms; a final +Inf slot is implied. Dense below 100 ms because the
# runbook's SLO is "P95 < 100 ms": the estimate is only as good as the buckets around it.
BUCKETS_MS: tuple[float, ...] = (
    1,
    2.5,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
)
STATUSES = ("success", "failure", "timeout")

# Positions inside a rollup list. A list (not a dict or dataclass) keeps pickles small:
# 31 days of per-minute rollups is ~45k of them in the replicated state.
_COUNT, _SUCCESS, _FAILURE, _TIMEOUT, _SUM, _HIST = range(6)
_STATUS_SLOT = {"success": _SUCCESS, "failure": _FAILURE, "timeout": _TIMEOUT}
_NBUCKETS = len(BUCKETS_MS) + 1

DEFAULT_KEEP_MINUTES = 31 * 24 * 60


# --------------------------------------------------------------------------- rollups


def new_rollup() -> list:
    """Return an empty rollup.

    Shape: ``[count, success, failure, timeout, sum_duration_ms, hist]`` where ``hist``
    holds ``len(BUCKETS_MS) + 1`` non-cumulative counts per bucket, the last one +Inf.
    """
    return [0, 0, 0, 0, 0.0, [0] * _NBUCKETS]


def _clean_duration(duration_ms: Any) -> float:
    # A bad duration must not poison the sum for 31 days nor make JSON unserialisable
    # (inf/NaN are not JSON), so anything that is not a finite non-negative number is 0.
    try:
        value = float(duration_ms)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if not math.isfinite(value) or value < 0:
        return 0.0
    return value


def add_execution(rollup: list, status: str, duration_ms: float) -> None:
    """Count one execution into ``rollup`` in place.

    An unknown status counts as a failure (something went wrong that we cannot
    name; hiding it would inflate the success rate). Negative, NaN or infinite
    durations count as 0 ms.
    """
    value = _clean_duration(duration_ms)
    slot = _STATUS_SLOT.get(status, _FAILURE) if isinstance(status, str) else _FAILURE
    rollup[_COUNT] += 1
    rollup[slot] += 1
    rollup[_SUM] += value
    # bisect_left gives Prometheus "le" semantics: a value equal to a bound belongs to it.
    rollup[_HIST][bisect_left(BUCKETS_MS, value)] += 1


def merge_rollups(rollups: Iterable[list]) -> list:
    """Return a new rollup that is the sum of ``rollups`` (empty input -> empty rollup)."""
    total = new_rollup()
    hist = total[_HIST]
    for rollup in rollups:
        for slot in (_COUNT, _SUCCESS, _FAILURE, _TIMEOUT, _SUM):
            total[slot] += rollup[slot]
        # Slicing tolerates a histogram of another length (another code version) without raising.
        for i, n in enumerate(rollup[_HIST][:_NBUCKETS]):
            hist[i] += n
    return total


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
    count = rollup[_COUNT]
    errors = rollup[_FAILURE] + rollup[_TIMEOUT]
    hist = rollup[_HIST]
    return {
        "totalOperations": count,
        "successCount": rollup[_SUCCESS],
        "errorCount": errors,
        "timeoutCount": rollup[_TIMEOUT],
        "successRate": round(rollup[_SUCCESS] * 100.0 / count, 2) if count else 100.0,
        "avgDuration": round(rollup[_SUM] / count, 3) if count else 0.0,
        "p95Duration": round(quantile_ms(hist, 0.95), 3),
        "p99Duration": round(quantile_ms(hist, 0.99), 3),
    }


def minute_of(epoch_s: float) -> int:
    """Return the minute bucket key for a Unix timestamp in seconds.

    Called inside replicated methods, so a timestamp that is not a finite number maps
    to minute 0 (pruned soon after) instead of raising and stalling the cluster.
    """
    try:
        return int(epoch_s // 60)
    except (TypeError, ValueError, OverflowError):
        return 0


def window_rollup(rollups_by_minute: dict[int, list], now_minute: int, minutes: int) -> list:
    """Merge the per-minute rollups with ``now_minute - minutes < minute <= now_minute``."""
    start = now_minute - minutes
    return merge_rollups(
        rollup for minute, rollup in rollups_by_minute.items() if start < minute <= now_minute
    )


def prune_rollups(
    rollups_by_minute: dict[int, list],
    now_minute: int,
    keep_minutes: int = DEFAULT_KEEP_MINUTES,
) -> None:
    """Drop, in place, minutes that ``window_rollup(..., now_minute, keep_minutes)`` would skip.

    Minutes after ``now_minute`` are kept: a new leader's clock may be slightly behind
    the previous one's, and its data is still current.
    """
    cutoff = now_minute - keep_minutes
    # Collect first (sorted, so every replica deletes in the same order), then delete:
    # mutating a dict while iterating it raises.
    for minute in sorted(m for m in rollups_by_minute if m <= cutoff):
        del rollups_by_minute[minute]


# ----------------------------------------------------------------------- prometheus


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
    if (
        isinstance(value, list)
        and len(value) == _HIST + 1
        and isinstance(value[_HIST], list)
        and len(value[_HIST]) == _NBUCKETS
    ):
        return value
    return new_rollup()


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
        statuses.add_metric([status], local[_STATUS_SLOT[status]])
    yield statuses
    # Label-free on purpose: the runbook alerts on rate(daemon_operations_failed_total[5m]).
    yield _counter(
        "daemon_operations_failed_total",
        "Operation executions run by this node that ended in failure or timeout.",
        local[_FAILURE] + local[_TIMEOUT],
    )
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*BUCKETS_MS, math.inf), local[_HIST], strict=False):
        cumulative += count
        buckets.append((floatToGoString(bound), cumulative))
    yield HistogramMetricFamily(
        "daemon_operation_duration_ms",
        "Duration of operation executions run by this node, in milliseconds.",
        buckets=buckets,
        sum_value=local[_SUM],
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
    info = InfoMetricFamily("daemon_build", "Version and name of this node (always 1).")
    info.add_metric(
        [], {"version": str(snapshot.get("version", "")), "node": str(snapshot.get("node", ""))}
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
