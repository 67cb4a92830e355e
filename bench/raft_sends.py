"""Socket writes per execution on the leader: coalesced appends against pysyncobj's own.

    python -m bench.raft_sends [--duration 10] [--connections 24]

Counts, not times, so it holds on a busy machine: `strace -c` on the leader counts its
`sendto`/`write`/`sendmsg` calls while wrk runs `noop` over all nodes; the figure is calls
per committed execution. Two clusters in one run: the same tree with
DAEMON_RAFT_COALESCE_APPENDS=0 (pysyncobj's one append per command per follower) as the
baseline, then as shipped. Needs strace and wrk (Debian packages).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cluster_bench import _load_wrk, warm_up
from bench.common import Cluster, RaftTiming, define_noop, latest_seq, save_result

CALLS = ("sendto", "sendmsg", "write", "writev")


def _strace_counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1] in CALLS and re.fullmatch(r"\d+", fields[3]):
            counts[fields[-1]] = int(fields[3])
    return counts


def measure(coalesce: bool, duration: float, connections: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="bench-sends-"))
    env = {"DAEMON_RAFT_COALESCE_APPENDS": "1" if coalesce else "0"}
    cluster = Cluster(base, size=3, overrides=RaftTiming().overrides(), env=env)
    try:
        cluster.start()
        define_noop(cluster)
        warm_up(cluster)
        leader = cluster.leader()
        before = latest_seq(cluster, leader)
        strace = subprocess.Popen(
            ["strace", "-c", "-f", "-e", "trace=" + ",".join(CALLS), "-p", str(leader.process.pid)],
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)  # strace attaches to every thread first
        load = _load_wrk(cluster, connections, duration)
        strace.send_signal(signal.SIGINT)
        counts = _strace_counts(strace.communicate(timeout=30)[1])
        cluster.wait_converged()
        committed = latest_seq(cluster, leader) - before
        total = sum(counts.values())
        return {
            "coalesce": coalesce,
            "committed": committed,
            "ok": load["ok"],
            "leaderCalls": counts,
            "leaderCallsPerExecution": round(total / max(committed, 1), 3),
        }
    finally:
        cluster.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=24)
    args = parser.parse_args()
    for tool in ("strace", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y {tool})")
    baseline = measure(False, args.duration, args.connections)
    shipped = measure(True, args.duration, args.connections)
    ratio = shipped["leaderCallsPerExecution"] / max(baseline["leaderCallsPerExecution"], 1e-9)
    result = {"baseline": baseline, "shipped": shipped, "ratio": round(ratio, 3)}
    result["load"] = os.getloadavg()
    path = save_result("raft-sends", result)
    for name in ("baseline", "shipped"):
        r = result[name]
        print(
            f"{name:9} {r['leaderCallsPerExecution']:6.2f} leader socket writes/execution "
            f"({r['committed']} committed, {r['leaderCalls']})"
        )
    print(f"ratio shipped/baseline: {ratio:.3f}   ({path})")


if __name__ == "__main__":
    main()
