"""Collector cost: one `manage.py collect` (default settings) watching C local clusters of
N real daemon nodes each (all on loopback). CPU (utime+stime from /proc, % of one core)
of the collector and RSS, over a fixed window after a settling period, while a light
writer runs on every cluster; then every cluster's mirrored Execution rows are compared
with that cluster's own `/executions` feed: none missed, none duplicated. The nodes' own
CPU is recorded alongside. Run 1 cluster and 10 in the same invocation: the first is the
same-run baseline."""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import OPERATE_TOKEN, CpuMeter, define_noop, node_pids, rss_mib
from bench.console_common import (
    close_django_connections,
    console_env,
    recreate_database,
    setup_django,
    start_process,
    stop_process,
)
from bench.console_freshness import daemon_cluster
from daemon.localcluster import wait_for
from daemon.localcluster.feeds import feed_records
from daemon.localcluster.writer import SteadyWriter

CATCH_UP_S = 60.0
# The collector only reads: the operate token is the least the nodes accept for the
# feed. (A variable outside DAEMON_…TOKEN… would be ignored: no token would be sent.)
TOKEN_ENV = "DAEMON_BENCH_OPERATE_TOKEN"


def polled_nodes() -> int:
    from console.clusters.models import Node

    count = Node.objects.filter(removed=False, reachable=True).count()
    close_django_connections()
    return count


def create_cluster_rows(clusters: list[Any]) -> list[int]:
    from console.clusters.models import Cluster

    return [
        Cluster.objects.create(
            name=f"bench-{i}", seed_urls=[n.url for n in c.nodes], operate_token_env=TOKEN_ENV
        ).id
        for i, c in enumerate(clusters)
    ]


def mirrored(cluster_id: int) -> tuple[int, list[tuple[int, str]], int]:
    """(feed cursor, [(seq, execution id)] mirrored, rows)."""
    from console.clusters.models import Cluster, Execution

    cursor = Cluster.objects.values_list("feed_cursor", flat=True).get(pk=cluster_id)
    rows = list(Execution.objects.filter(cluster_id=cluster_id).values_list("seq", "execution_id"))
    return cursor, rows, len(rows)


def samples_per_s(cluster_ids: list[int], since: Any, until: Any) -> list[float]:
    """Chart points written per second of the window, per cluster (the cadence is 1/s)."""
    from console.clusters.models import Sample

    seconds = (until - since).total_seconds()
    rates = [
        Sample.objects.filter(cluster_id=cid, at__gte=since, at__lt=until).count() / seconds
        for cid in cluster_ids
    ]
    close_django_connections()
    return [round(r, 2) for r in rates]


def compare(cluster: Any, cluster_id: int, acknowledged: list[str]) -> dict[str, Any]:
    """Wait (bounded) until the mirror's cursor reaches the daemon's latest seq, then
    compare rows: every record of the daemon's feed mirrored once, nothing else."""
    node = cluster.leader()
    daemon = feed_records(node.url, OPERATE_TOKEN)
    latest = max((int(r["seq"]) for r in daemon), default=0)
    started = time.monotonic()
    with contextlib.suppress(AssertionError):  # wait_for's timeout: reported as missed
        wait_for(lambda: mirrored(cluster_id)[0] >= latest, timeout=CATCH_UP_S, what="mirror")
    caught_up_s = time.monotonic() - started
    _, rows, count = mirrored(cluster_id)
    close_django_connections()
    daemon_keys = {(int(r["seq"]), str(r["id"])) for r in daemon}
    mirror_keys = set(rows)
    mirror_ids = [i for _, i in rows]
    return {
        "daemonRecords": len(daemon),
        "mirroredRows": count,
        "missed": len(daemon_keys - mirror_keys),
        "unexpected": len(mirror_keys - daemon_keys),
        "duplicated": (count - len(mirror_keys)) + (len(mirror_ids) - len(set(mirror_ids))),
        "acknowledgedNotMirrored": len(set(acknowledged) - set(mirror_ids)),
        "catchUpS": round(caught_up_s, 2),
    }


def collector_cost(
    clusters: int, size: int, duration_s: float, settle_s: float, rate: float, logs: Path
) -> dict[str, Any]:
    recreate_database()
    setup_django()
    with contextlib.ExitStack() as stack:
        running = [stack.enter_context(daemon_cluster(size)) for _ in range(clusters)]
        for cluster in running:
            define_noop(cluster)
        ids = create_cluster_rows(running)
        close_django_connections()
        env = console_env(False, **{TOKEN_ENV: OPERATE_TOKEN})
        argv = [sys.executable, "manage.py", "collect", "--no-local"]
        proc = start_process("collector", argv, env, logs)
        stack.callback(stop_process, proc)
        total = clusters * size
        started = time.monotonic()
        # Bounded, and not fatal: a collector that cannot keep up is what we measure.
        with contextlib.suppress(AssertionError):
            wait_for(lambda: proc.exited() or polled_nodes() == total, timeout=120, what="polled")
        all_polled_s = round(time.monotonic() - started, 1)
        time.sleep(settle_s)
        if proc.exited():
            raise RuntimeError(f"collector exited:\n{proc.log_tail()}")
        writers = [
            SteadyWriter(lambda c=c: [n.url for n in c.live_nodes()], OPERATE_TOKEN, "noop", rate)
            for c in running
        ]
        pids = {"collector": proc.pid}
        for i, cluster in enumerate(running):
            pids.update({f"c{i}-{name}": pid for name, pid in node_pids(cluster).items()})
        meter = CpuMeter(pids)
        for writer in writers:
            writer.start()
        meter.start()
        window_start = datetime.now(UTC)
        time.sleep(duration_s)
        cpu = meter.stop()
        window_end = datetime.now(UTC)
        reports = [writer.stop() for writer in writers]
        rss = rss_mib(proc.pid)
        nodes_seen = polled_nodes()
        sample_rates = samples_per_s(ids, window_start, window_end)
        checks = [
            compare(c, cid, w.acknowledged_ids)
            for c, cid, w in zip(running, ids, writers, strict=True)
        ]
    collector_pct = cpu.pop("collector")
    sums = {k: sum(c[k] for c in checks) for k in checks[0] if k != "catchUpS"}
    return {
        "clusters": clusters,
        "clusterSize": size,
        "nodes": total,
        "polledNodes": nodes_seen,
        "allPolledAfterS": all_polled_s,
        "durationS": duration_s,
        "writerRatePerCluster": rate,
        "acknowledged": sum(r.acknowledged for r in reports),
        "writerFailed": sum(r.failed for r in reports),
        "collectorCpuPct": collector_pct,
        "collectorCpuPctPerNode": round(collector_pct / total, 3),
        "collectorRssMiB": rss,
        "samplesPerSMin": min(sample_rates),
        "samplesPerSMean": round(sum(sample_rates) / len(sample_rates), 2),
        "nodeCpuPctMean": round(sum(cpu.values()) / max(1, len(cpu)), 2),
        "mirror": {**sums, "maxCatchUpS": max(c["catchUpS"] for c in checks)},
    }
