"""Collector cost: `manage.py collect` (default 1 s poll) against an idle local cluster
of N real daemon nodes; CPU (utime+stime from /proc, % of one core) per polled node
and RSS, over a fixed window after a settling period. The nodes' own CPU is recorded
alongside, as the baseline of the same run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import ADMIN_TOKEN, CpuMeter, node_pids, rss_mib
from bench.console_common import (
    TOKEN_ENV,
    close_django_connections,
    collector,
    console_env,
    create_cluster_row,
    recreate_database,
    setup_django,
)
from bench.console_freshness import daemon_cluster


def polled_nodes() -> int:
    from console.clusters.models import Node

    count = Node.objects.filter(removed=False, reachable=True).count()
    close_django_connections()
    return count


def collector_cost(size: int, duration_s: float, settle_s: float, logs: Path) -> dict[str, Any]:
    recreate_database()
    setup_django()
    with daemon_cluster(size) as cluster:
        create_cluster_row([n.url for n in cluster.nodes])
        close_django_connections()
        env = console_env(False, **{TOKEN_ENV: ADMIN_TOKEN})
        with collector(env, logs) as proc:
            time.sleep(settle_s)
            if proc.exited():
                raise RuntimeError(f"collector exited:\n{proc.log_tail()}")
            pids = {"collector": proc.pid, **node_pids(cluster)}
            meter = CpuMeter(pids)
            meter.start()
            time.sleep(duration_s)
            cpu = meter.stop()
            rss = rss_mib(proc.pid)
            nodes_seen = polled_nodes()
    collector_pct = cpu.pop("collector")
    return {
        "clusterSize": size,
        "polledNodes": nodes_seen,
        "durationS": duration_s,
        "collectorCpuPct": collector_pct,
        "collectorCpuPctPerNode": round(collector_pct / size, 2),
        "collectorRssMiB": rss,
        "nodeCpuPct": cpu,
        "nodeCpuPctMean": round(sum(cpu.values()) / max(1, len(cpu)), 2),
    }
