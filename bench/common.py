"""Shared bits for the benchmarks: machine facts, load checks, clusters, stats, results.

Clusters are daemon.localcluster's LocalCluster (the product's node-process layer): real
`python -m daemon run` processes on loopback free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from daemon.localcluster import free_port, wait_for
from daemon.localcluster.cluster import LocalCluster, LocalNode

__all__ = [
    "ADMIN_TOKEN",
    "OPERATE_TOKEN",
    "RAFT_PASSWORD",
    "ROOT",
    "Cluster",
    "Node",
    "RaftTiming",
    "free_port",
    "wait_for",
]

ROOT = Path(__file__).resolve().parent.parent
# Scratch clusters on loopback: fresh secrets per benchmark process.
ADMIN_TOKEN = "bench-admin-" + secrets.token_urlsafe(24)
OPERATE_TOKEN = "bench-operate-" + secrets.token_urlsafe(24)
RAFT_PASSWORD = "bench-raft-" + secrets.token_urlsafe(24)
Node = LocalNode


class Cluster(LocalCluster):
    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        overrides: dict | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        tokens = {"admin": ADMIN_TOKEN, "operate": OPERATE_TOKEN}
        env = {"PYTHONPATH": str(ROOT), **(env or {})}
        super().__init__(base_dir, size, overrides, env, tokens=tokens, raft_password=RAFT_PASSWORD)


RESULTS_DIR = ROOT / "bench" / "results"
NOOP_OP = {"id": "noop", "name": "noop", "handler": {"kind": "noop"}}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- Raft timing settings ---------------------------------------------------
@dataclass(frozen=True)
class RaftTiming:
    """The raft.* keys the benchmarks vary (daemon/config.py defaults)."""

    heartbeat_ms: int = 100
    election_ms: int = 1000
    batch: bool = False

    @property
    def label(self) -> str:
        mode = "batch" if self.batch else "nobatch"
        return f"{mode}-hb{self.heartbeat_ms}-et{self.election_ms}"

    def overrides(self) -> dict[str, dict[str, Any]]:
        return {
            "raft": {
                "heartbeatIntervalMs": self.heartbeat_ms,
                "electionTimeoutMs": self.election_ms,
                "appendEntriesBatch": self.batch,
            }
        }


PRESETS: dict[str, RaftTiming] = {
    "default": RaftTiming(100, 1000, False),
    "pysyncobj-default": RaftTiming(100, 1000, True),
    "batch-hb10": RaftTiming(10, 1000, True),
    "batch-hb5": RaftTiming(5, 1000, True),
    "nobatch-hb10": RaftTiming(10, 1000, False),
    "nobatch-et1500": RaftTiming(100, 1500, False),
}


# ---- machine and load -------------------------------------------------------
def _run(cmd: Sequence[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "nproc": _run(["nproc"]),
        "free_h": _run(["free", "-h"]),
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "kernel": platform.release(),
    }


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def cpu_busy_pct(seconds: float = 3.0) -> float:
    """Machine-wide CPU busy % (100 = every core busy) over `seconds`, from /proc/stat.

    Unlike the load average, this does not remember our own previous run.
    """

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values[:8]) - idle, sum(values[:8])

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return round(100 * (busy1 - busy0) / max(1, total1 - total0), 1)


def wait_quiet(max_busy: float, max_wait_s: float, max_load: float | None = None) -> dict[str, Any]:
    """Wait (bounded) until the machine is mostly idle before a measurement: CPU busy %
    at most `max_busy` and, if given, the 1-minute load below `max_load`.

    Records the load average and the CPU busy % of the whole machine (which
    includes an idle cluster under test, ~1 %), measured just before the run.
    """

    def quiet(busy: float) -> bool:
        return busy <= max_busy and (max_load is None or loadavg()[0] < max_load)

    start = time.monotonic()
    busy = cpu_busy_pct()
    while not quiet(busy) and time.monotonic() - start < max_wait_s:
        time.sleep(2)
        busy = cpu_busy_pct()
    if not quiet(busy):
        print(f"  warning: not quiet: load {loadavg()}, {busy}% busy", file=sys.stderr)
    return {
        "loadBefore": loadavg(),
        "cpuBusyPctBefore": busy,
        "waitedS": round(time.monotonic() - start, 1),
        "quiet": quiet(busy),
    }


def bounded(lo: float, hi: float, kind: type = float) -> Callable[[str], Any]:
    """An argparse type: `kind(text)`, refused outside [lo, hi]."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}")
        return value

    return parse


# ---- processes --------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class CpuMeter:
    """CPU% of one core per process between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._t0
        return {
            name: round((cpu_seconds(pid) - self._start[name]) / elapsed * 100, 2)
            for name, pid in self.pids.items()
        }


def node_pids(cluster: Cluster) -> dict[str, int]:
    return {n.name: n.proc.pid for n in cluster.live_nodes() if n.proc is not None}


# ---- clusters ---------------------------------------------------------------
NODELAY_DIR = ROOT / "bench" / "nodelay"


def nodelay_env() -> dict[str, str]:
    """Node env for the TCP_NODELAY experiment (bench/nodelay/sitecustomize.py)."""
    return {"PYTHONPATH": f"{NODELAY_DIR}{os.pathsep}{ROOT}"}


@contextlib.contextmanager
def running_cluster(timing: RaftTiming, size: int = 3, nodelay: bool = False) -> Iterator[Cluster]:
    """A started cluster with the `noop` operation defined; stopped and removed on exit.

    nodelay=True runs the nodes with the TCP_NODELAY experiment (no daemon/ change).
    """
    base = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    env = nodelay_env() if nodelay else {}
    if extra := os.environ.get("BENCH_NODE_PYTHONPATH"):
        # A/B experiments: a sitecustomize put first on the nodes' path changes them
        # without touching daemon/ (the result records it).
        env["PYTHONPATH"] = f"{extra}{os.pathsep}{env.get('PYTHONPATH', ROOT)}"
    cluster = Cluster(base, size=size, overrides=timing.overrides(), env=env)
    try:
        cluster.start()
        define_noop(cluster)
        yield cluster
    finally:
        cluster.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def define_noop(cluster: Cluster) -> None:
    leader = cluster.leader()
    response = cluster.define(leader, NOOP_OP)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"defining noop failed: {response.status_code} {response.text}")
    cluster.wait_converged()


def latest_seq(cluster: Cluster, node: Node) -> int:
    # Results need a read token (anonymous callers read health and metrics only).
    headers = {"Authorization": f"Bearer {OPERATE_TOKEN}"}
    answer = cluster.get(node, "/executions?after=0&limit=1", headers=headers)
    return int(answer.json()["latestSeq"])


def execute_url(node: Node) -> str:
    return f"{node.url}/execute/{NOOP_OP['id']}"


def auth_headers(token: str = OPERATE_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def health_cluster(client: httpx.Client, node: Node) -> dict[str, Any]:
    return client.get(f"{node.url}/health/cluster", timeout=2).json()


# ---- statistics -------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
        "mean": round(sum(values) / len(values), digits),
    }


# ---- results ----------------------------------------------------------------
def save_result(name: str, data: dict[str, Any]) -> Path:
    """Write one measurement with its command, machine and load; return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    payload = {
        "name": name,
        "command": " ".join([Path(sys.executable).name, "-m", "bench.run", *sys.argv[1:]]),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "gitHead": _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "daemonDirty": _run(["git", "-C", str(ROOT), "status", "--porcelain", "daemon"]),
        "loadAfter": loadavg(),
        **data,
    }
    path.write_text(json.dumps(payload, indent=2, default=_jsonable))
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)
