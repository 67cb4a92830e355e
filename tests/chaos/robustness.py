"""The robustness run, in the style of etcd's: real daemon processes under a steady
writer, faults injected from outside, and a checker that looks only at what the
clients were told. Prints one JSON line.

    python -m tests.chaos.robustness BASE_DIR --faults kill9-leader,netem-loss
    python -m tests.chaos.robustness BASE_DIR --random 20 --seed 7 --time-bound-s 600

Run it through `netns.run_in_private_netns` (network, PID and mount namespaces of
its own): rules, qdiscs and tmpfs mounts vanish with it. Every node's data dir
is a tmpfs, so a disk fault fills a small filesystem, not the machine's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.chaos import netns
from tests.chaos.checker import check_executions
from tests.chaos.cluster_ops import NOOP, converged, wait_until
from tests.chaos.faults import FAULTS, Unsupported, pick_target
from tests.chaos.writer import Writer
from tests.cluster_harness import ADMIN_TOKEN, Cluster, wait_for

TMPFS_MIB = 48
DISK_ENV = {"DAEMON_DISK_RESERVE_BYTES": str(4 << 20)}


def all_ready(cluster: Cluster) -> bool:
    return all(cluster.get(n, "/health/ready", timeout=2).status_code == 200 for n in cluster.nodes)


def run_fault(cluster: Cluster, writer: Writer, name: str, hold_s: float) -> dict[str, Any]:
    fault = FAULTS[name]
    target = pick_target(cluster, fault)
    wait_until(lambda: all_ready(cluster), 30)
    leader_before = cluster.leader().name
    acked_before = writer.count()
    injected_at = time.monotonic()
    latency_before = writer.median_latency(injected_at - 2 * hold_s, injected_at)
    heal = fault.inject(cluster, target)
    time.sleep(hold_s)
    acked_during = writer.count() - acked_before
    healed_at = time.monotonic()
    heal()
    observed = getattr(heal, "observed", {})  # what a fault saw of itself (the delay's links)
    ready_s = wait_until(lambda: all_ready(cluster), 60)
    # Recovery: the cluster acknowledges writes again, and every node is ready.
    resumed_s = wait_until(lambda: writer.first_ack_after(healed_at) is not None, 60)
    return {
        "fault": name,
        # The longest time without any acknowledged write, from the fault to the
        # first acknowledgement after the heal: the outage clients saw.
        "maxAckGapS": _round(max_ack_gap(writer, injected_at, time.monotonic())),
        "node": target.name,
        "holdS": hold_s,
        "firstAckAfterInjectS": _round(writer.first_ack_after(injected_at)),
        "ackedDuringFault": acked_during,
        # Median time to an acknowledgement just before the fault and while it held.
        "medianAckS": {
            "before": _round(latency_before),
            "during": _round(writer.median_latency(injected_at, healed_at)),
        },
        "firstAckAfterHealS": _round(
            writer.first_ack_after(healed_at) if resumed_s is not None else None
        ),
        "allReadyAfterHealS": _round(ready_s),
        "recovered": ready_s is not None and resumed_s is not None,
        "leaderBefore": leader_before,
        "leaderAfter": cluster.leader().name,
        **observed,
    }


def max_ack_gap(writer: Writer, start: float, end: float) -> float:
    with writer.lock:
        times = sorted(at for at, _ in writer.acked if start <= at <= end)
    edges = [start, *times, end]
    return max(b - a for a, b in itertools.pairwise(edges))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def mount_tmpfs(cluster: Cluster) -> None:
    for node in cluster.nodes:
        node.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={TMPFS_MIB}m,mode=0700",
                "tmpfs",
                str(node.data_dir),
            ],
            check=True,
        )


def run(
    base_dir: Path, faults: list[str], hold_s: float, seed: int | None, time_bound_s: float
) -> dict[str, Any]:
    cluster = Cluster(base_dir, size=3, env=DISK_ENV)
    mount_tmpfs(cluster)
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        cluster.start()
        assert cluster.define(cluster.nodes[0], NOOP).status_code in (200, 201)
        with Writer([n.url for n in cluster.nodes], NOOP["id"], ADMIN_TOKEN) as writer:
            wait_for(lambda: writer.count() >= 100, what="100 acknowledged before the first fault")
            for name in faults:
                if time.monotonic() - started > time_bound_s:
                    break
                try:
                    results.append(run_fault(cluster, writer, name, hold_s))
                except Unsupported as exc:
                    results.append({"fault": name, "skipped": str(exc)[:300]})
                except (AssertionError, httpx.HTTPError, subprocess.CalledProcessError) as exc:
                    results.append({"fault": name, "recovered": False, "error": str(exc)[:300]})
            wait_until(lambda: all_ready(cluster), 60)
        converge_s = wait_until(lambda: converged(cluster), 60)
        failed_requests = sum(v for k, v in writer.outcomes.items() if k != "200")
        check = check_executions(cluster, writer.acked_ids(), allowed_unacked=failed_requests)
        lost = max((v["missingAcked"] for v in check["nodes"].values()), default=0)
        return {
            "seed": seed,
            "faults": results,
            "faultsRun": sum(1 for r in results if "skipped" not in r),
            "faultsSkipped": sum(1 for r in results if "skipped" in r),
            "faultsSurvived": sum(1 for r in results if r.get("recovered")),
            "converged": converge_s is not None,
            "acked": len(writer.acked_ids()),
            "ackedLost": lost,
            "outcomes": dict(writer.outcomes),
            "check": check,
            "divergences": sum(n.log().count("may have diverged") for n in cluster.nodes),
            "elapsedS": round(time.monotonic() - started, 1),
        }
    finally:
        subprocess.run(
            ["tc", "qdisc", "del", "dev", "lo", "root"], check=False, capture_output=True
        )
        cluster.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_dir", type=Path)
    parser.add_argument("--faults", default="", help="comma-separated names, in order")
    parser.add_argument("--random", type=int, default=0, help="this many faults, drawn with --seed")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--hold-s", type=float, default=3.0)
    parser.add_argument("--time-bound-s", type=float, default=600.0)
    args = parser.parse_args()
    netns.enter()
    faults = [f for f in args.faults.split(",") if f]
    seed = args.seed
    if args.random:
        seed = seed if seed is not None else random.randrange(1 << 30)
        rng = random.Random(seed)
        faults += [rng.choice(sorted(FAULTS)) for _ in range(args.random)]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise SystemExit(f"unknown faults {unknown}; known: {sorted(FAULTS)}")
    print(json.dumps(run(args.base_dir, faults, args.hold_s, seed, args.time_bound_s)))


if __name__ == "__main__":
    main()
