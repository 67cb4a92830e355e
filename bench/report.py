"""Summarize bench/results/*.json as markdown rows: `python -m bench.report [GLOB]`.

One row per result file, newest last, with the figures BENCHMARKS.md quotes and
the load average measured before the run.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR


def _load(d: dict[str, Any]) -> str:
    before = d.get("loadBefore") or ["?"]
    return f"{before[0]} ({d.get('cpuBusyPctBefore', '?')}% busy)"


def _pcts(s: dict[str, Any]) -> str:
    return f"{s.get('p50')} / {s.get('p95')} / {s.get('p99')}"


def row_inproc(d: dict[str, Any]) -> str:
    return (
        f"commits/s {d['commitsPerS']}, target {d['target']}, callbacks {d['callbacks']}, "
        f"same digest {d['sameDigest']}"
    )


def row_throughput(d: dict[str, Any]) -> str:
    return (
        f"executions/s {d['executionsPerS']} (committed/s {d['committedPerS']}), "
        f"429 {d['count429']}, errors {d['errorCount']}, node CPU % {d['nodeCpuPct']}"
    )


def row_latency(d: dict[str, Any]) -> str:
    lag = d["lag"]
    return (
        f"ms p50/p95/p99 {_pcts(d['latencyMs'])}, errors {d['errorCount']}, "
        f"replicationLag p95 {lag['replicationLagMs'].get('p95')} ms "
        f"(follower lagMs p95 {lag['followerLagMs'].get('p95')}, n={lag['samples']}), "
        f"client send lag p95 {d['sendLagMs'].get('p95')} ms, node CPU % {d['nodeCpuPct']}"
    )


def row_failover(d: dict[str, Any]) -> str:
    s = d["failoverS"]
    trials = [t["failoverS"] for t in d["trials"]]
    return (
        f"s p50 {s.get('p50')} p95 {s.get('p95')} max {s.get('max')}, "
        f"failed {d['failedTrials']}, trials {trials}"
    )


def row_idle(d: dict[str, Any]) -> str:
    return f"CPU % {d['cpuPctOfOneCore']}, RSS MiB {d['rssMiB']}"


def row_keepalive(d: dict[str, Any]) -> str:
    return f"req/s {d['requestsPerS']}, {d['wrkLatencyLine']}"


ROWS: dict[str, Callable[[dict[str, Any]], str]] = {
    "inproc": row_inproc,
    "throughput": row_throughput,
    "latency": row_latency,
    "failover": row_failover,
    "idle": row_idle,
    "keepalive": row_keepalive,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("glob", nargs="?", default="*.json")
    args = parser.parse_args(argv)
    paths = sorted(Path(RESULTS_DIR).glob(args.glob), key=lambda p: p.stat().st_mtime)
    print("| file | load 1m (busy) | figures |\n|---|---|---|")
    for path in paths:
        d = json.loads(path.read_text())
        row = ROWS.get(d["name"].split("-", 1)[0])
        if row is not None:
            print(f"| {path.stem} | {_load(d)} | {row(d)} |")


if __name__ == "__main__":
    main()
