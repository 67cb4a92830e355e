"""What each cluster needs this tick, so watching many clusters stays cheap (issue 16).

A *full* poll asks every node (/health/node, /queue) and the leader's summary, records
all of it, mirrors the execution feed, and evaluates alerts and split brain: about 13
requests and a few dozen queries for 5 nodes. While a watch is held on every member
(watch.py), each role, term, leader, quorum, drain or peer change reaches the collector
through it at once, so a full poll is needed only
  - when a watch of this cluster answered "changed" or broke (the cluster is *dirty*),
  - while some member is not watched (then at every tick, at interval_s, as before),
  - in the fast window after a change (fast_interval_s for fast_for_s),
  - every reconcile_s in any case (what no watch says: a node hung with its socket open,
    its disk, its queue).
Between full polls a chart point is still due every sample_interval_s: a *sample* tick
asks the leader only for /health/cluster and /metrics (lag, commit index, the lifetime
total behind executions/s), writes lag and the sample, and mirrors the feed only if the
commit index moved. The sample's per-node figures (queue, disk) and the daemon's
5-minute window (p95, success rate, errors) come from the last full poll, at most
reconcile_s old. A summary that
disagrees with the rows about anything a watch should have said (leader, term, quorum,
members, how many answer) turns the sample tick into a full poll at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from console.clusters.models import Cluster
from console.collector.collector_config import CollectorConfig
from console.collector.observe import NodePoll, Summary
from console.collector.record import Lags, Recorder
from console.collector.samples import Totals


class Plan(enum.Enum):
    FULL = "full"
    SAMPLE = "sample"
    IDLE = "idle"


@dataclass
class ClusterMemory:
    """What the collector keeps between ticks for one cluster (none of it is needed to
    restart correctly: rows hold the state, this only saves work and noise)."""

    recorder: Recorder
    preferred_url: str | None = None
    totals: Totals | None = None
    last_sample_at: datetime | None = None
    fast_until: float = 0.0
    # monotonic times of the last full poll, sample and alert evaluation (0: never)
    full_at: float = 0.0
    sampled_at: float = 0.0
    alerts_at: float = 0.0
    # From the last full poll: what a sample tick reuses and checks the summary against.
    leader_url: str | None = None
    polls: list[NodePoll] = field(default_factory=list)
    members: frozenset[str] | None = None
    reachable: int | None = None  # members the leader counted as answering
    metrics_5m: dict | None = None  # the 5-minute window, reused by sample ticks
    # The commit index the feed was last mirrored at (None: mirror on the next tick).
    mirrored_commit: int | None = None
    feed_cursor: int | None = None  # as the last mirror left it (None: read the row)
    # name -> (pk, match_index, lag_entries, lag_ms) as last written by a sample tick
    lags: Lags = field(default_factory=dict)


def plan(
    memory: ClusterMemory, config: CollectorConfig, now: float, watched: bool, dirty: bool
) -> Plan:
    """`watched`: a watch is held on every member of the cluster; `dirty`: one of them
    answered "changed" or broke since the last tick."""
    if not watched or dirty or memory.full_at == 0.0 or memory.leader_url is None:
        return Plan.FULL
    if memory.fast_until > now or now - memory.full_at >= config.reconcile_s:
        return Plan.FULL
    if now - memory.sampled_at >= config.sample_interval_s * 0.95:
        return Plan.SAMPLE
    return Plan.IDLE


def summary_agrees(cluster: Cluster, summary: Summary, memory: ClusterMemory) -> bool:
    """Whether the leader's summary matches the rows on everything a watch reports, and
    the count of members that answer; if not, this cluster needs a full poll now."""
    view = summary.cluster_view
    return (
        (view.leader or "") == cluster.leader_name
        and view.has_quorum == cluster.has_quorum
        and (view.term or cluster.term) == cluster.term
        and frozenset(view.by_name) == memory.members
        and view.reachable_nodes == memory.reachable
    )


def mirror_due(memory: ClusterMemory, commit_index: int) -> bool:
    """The feed only grows with the log: an unmoved commit index means nothing to mirror
    (a full poll mirrors anyway, so a miss here is caught within reconcile_s)."""
    return memory.mirrored_commit is None or commit_index != memory.mirrored_commit


def alerts_due(memory: ClusterMemory, config: CollectorConfig, now: float) -> bool:
    return now - memory.alerts_at >= config.alert_interval_s
