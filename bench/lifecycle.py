"""Node lifecycle under a steady writer: `python -m bench.lifecycle [--rate 50]`.

On a scratch 3-node cluster (real processes, loopback, temp dir), while a writer sends
`--rate` executions/s the way a client with failover does (daemon/localcluster/writer.py:
a refused attempt goes to the next node, an execution fails only if no node takes it
within 5 s), each phase runs `daemonctl` as an operator would:

  restart-follower   daemonctl node restart <a follower>
  restart-leader     daemonctl node restart <the leader>
  scale-5            daemonctl scale 5
  scale-3            daemonctl scale 3

Per phase: the action's time, its "catch up" step (time until the restarted node had
applied what the leader had committed), and the writer's failed executions, retried
ones and refused attempts (by reason). Afterwards every acknowledged execution is
checked to be on every node. Writes bench/results/lifecycle-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ADMIN_TOKEN,
    PRESETS,
    ROOT,
    bounded,
    running_cluster,
    save_result,
    wait_quiet,
)
from daemon.localcluster import Layout, LayoutError
from daemon.localcluster.manager import LocalNodes
from daemon.localcluster.writer import SteadyWriter, executed_ids

TAIL_S = 2.0  # the writer keeps going this long after each action


def daemonctl(root: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "daemon.ctl", *args, "--cluster-dir", str(root),
         "--token", ADMIN_TOKEN, "--json"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines or "outcome" not in lines[-1]:
        raise RuntimeError(f"daemonctl {' '.join(args)} failed: {done.stderr.strip()}")
    return lines[-1]["outcome"]


class Urls:
    """The nodes' URLs from the layout on disk, re-read at most every 0.5 s (daemonctl
    changes it when scaling)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cached: list[str] = []
        self.read_at = 0.0

    def __call__(self) -> list[str]:
        if time.monotonic() - self.read_at > 0.5:
            try:
                self.cached = [s.url for s in Layout.load(self.root).nodes]
                self.read_at = time.monotonic()
            except LayoutError:
                pass  # being rewritten; the last list still serves
        return self.cached


def phase(name: str, root: Path, rate: float, args: list[str]) -> dict[str, Any]:
    writer = SteadyWriter(Urls(root), ADMIN_TOKEN, "noop", rate=rate)
    writer.start()
    time.sleep(1.0)  # steady before the action
    started = time.monotonic()
    outcome = daemonctl(root, *args)
    action_s = time.monotonic() - started
    time.sleep(TAIL_S)
    report = writer.stop()
    catch_up = [s["elapsed_s"] for s in outcome["steps"] if s["step"].startswith("catch up")]
    result = {
        "phase": name,
        "command": "daemonctl " + " ".join(args),
        "actionS": round(action_s, 2),
        "catchUpStepS": catch_up,
        "steps": {s["step"]: s["elapsed_s"] for s in outcome["steps"]},
        "writer": report.as_json(),
        "acknowledgedIds": writer.acknowledged_ids,
    }
    w = result["writer"]
    print(
        f"{name:<17} {action_s:6.2f}s  catch-up {catch_up}  offered {w['offered']}  "
        f"failed {w['failed']}  retried {w['retried']}  refused attempts {w['attemptErrors']}  "
        f"max latency {w['maxLatencyMs']} ms",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--rate", type=bounded(1, 500), default=50.0, help="executions/s")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--max-busy", type=bounded(0, 100), default=30.0)
    parser.add_argument("--max-wait", type=bounded(0, 600), default=60.0)
    args = parser.parse_args(argv)
    quiet = wait_quiet(args.max_busy, args.max_wait)
    phases = []
    with running_cluster(PRESETS[args.preset]) as cluster:
        root = cluster.layout.root
        try:
            leader = cluster.leader()
            follower = next(n for n in cluster.nodes if n is not leader)
            phases.append(phase("restart-follower", root, args.rate,
                                ["node", "restart", follower.name]))  # fmt: skip
            leader = cluster.leader()
            phases.append(phase("restart-leader", root, args.rate,
                                ["node", "restart", leader.name]))  # fmt: skip
            phases.append(phase("scale-5", root, args.rate, ["scale", "5"]))
            phases.append(phase("scale-3", root, args.rate, ["scale", "3"]))
            nodes = LocalNodes(Layout.load(root), token=ADMIN_TOKEN, timeout_s=60)
            nodes.wait_converged()
            acknowledged = {i for p in phases for i in p.pop("acknowledgedIds")}
            lost = {
                spec.name: len(acknowledged - executed_ids(spec.url, ADMIN_TOKEN))
                for spec in nodes.layout.nodes
            }
            nodes.close()
        finally:
            for p in phases:
                p.pop("acknowledgedIds", None)
    print(f"acknowledged {len(acknowledged)}; missing per node: {lost}")
    path = save_result(
        "lifecycle",
        {"rate": args.rate, "preset": args.preset, **quiet, "phases": phases,
         "acknowledged": len(acknowledged), "missingPerNode": lost},
    )  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
