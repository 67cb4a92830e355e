"""(b)-(f): measurements against a real 3-node cluster over HTTP on loopback.

Load comes from separate processes (wrk, or ``python -m bench.loadgen``) so the
load generator never shares an event loop or a GIL with what it measures.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import httpx

from bench.common import (
    OPERATE_TOKEN,
    ROOT,
    Cluster,
    CpuMeter,
    Node,
    auth_headers,
    execute_url,
    latest_seq,
    node_pids,
    rss_mib,
    summarize,
)

LUA_SCRIPT = ROOT / "bench" / "execute.lua"


def warm_up(cluster: Cluster, requests: int = 30) -> None:
    with httpx.Client(headers=auth_headers(), timeout=10) as client:
        for i in range(requests):
            node = cluster.nodes[i % len(cluster.nodes)]
            client.post(execute_url(node)).raise_for_status()


# ---- (b) throughput -----------------------------------------------------------
def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _wrk(node: Node, connections: int, duration: float) -> subprocess.Popen:
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{int(duration)}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        execute_url(node),
    ]
    env = {"BENCH_TOKEN": OPERATE_TOKEN, "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _parse_wrk(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{output[-2000:]}")


def _load_wrk(cluster: Cluster, connections: int, duration: float) -> dict[str, Any]:
    per_node = max(1, connections // len(cluster.nodes))
    procs = [_wrk(node, per_node, duration) for node in cluster.nodes]
    outputs = [p.communicate(timeout=duration + 60)[0] for p in procs]
    runs = [_parse_wrk(out) for out in outputs]
    codes: dict[str, int] = {}
    errors: dict[str, int] = {}
    for run in runs:
        for code, n in run["codes"].items():
            codes[code] = codes.get(code, 0) + n
        for kind, n in run["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    elapsed = max(run["durationUs"] for run in runs) / 1e6
    return {
        "tool": "wrk",
        "connections": per_node * len(cluster.nodes),
        "elapsedS": round(elapsed, 3),
        "codes": codes,
        "socketErrors": errors,
        "ok": codes.get("200", 0),
        "perNodeLatencyUs": [run["latencyUs"] for run in runs],
    }


def _loadgen(args: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.loadgen", *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _url_args(cluster: Cluster) -> list[str]:
    args = []
    for node in cluster.nodes:
        args += ["--url", execute_url(node)]
    return args


def _load_httpx(cluster: Cluster, connections: int, duration: float) -> dict[str, Any]:
    args = ["closed", *_url_args(cluster), "--token", OPERATE_TOKEN]
    args += ["--concurrency", str(connections), "--duration", str(duration)]
    result = _loadgen(args, timeout=duration + 60)
    result["tool"] = "httpx"
    return result


def throughput(cluster: Cluster, duration: float, connections: int, tool: str) -> dict[str, Any]:
    warm_up(cluster)
    leader = cluster.leader()
    seq0 = latest_seq(cluster, leader)
    meter = CpuMeter(node_pids(cluster))
    meter.start()
    if tool == "wrk":
        load = _load_wrk(cluster, connections, duration)
    else:
        load = _load_httpx(cluster, connections, duration)
    cpu = meter.stop()
    cluster.wait_converged(timeout=60)
    committed = latest_seq(cluster, leader) - seq0
    elapsed = load["elapsedS"]
    codes = load["codes"]
    return {
        **load,
        "executionsPerS": round(load["ok"] / elapsed, 1),
        "committedRecords": committed,
        "committedPerS": round(committed / elapsed, 1),
        "count429": codes.get("429", 0),
        "errorCount": sum(n for c, n in codes.items() if c != "200"),
        "nodeCpuPct": cpu,
        "converged": True,
    }


# ---- keep-alive probe ----------------------------------------------------------
def keepalive(cluster: Cluster, seconds: float) -> dict[str, Any]:
    """One wrk connection doing GET /health/live: the per-request floor of the
    HTTP layer on a kept-alive connection (no Raft involved)."""
    node = cluster.nodes[0]
    cmd = ["wrk", "-t1", "-c1", f"-d{int(seconds)}s", f"{node.url}/health/live"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    latency_line = next(line for line in out.splitlines() if "Latency" in line)
    rps_line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return {
        "wrkLatencyLine": " ".join(latency_line.split()),
        "requestsPerS": float(rps_line.split()[1]),
    }


# ---- (c) latency at a fixed rate, with (f) replication lag sampled ------------
class LagSampler(threading.Thread):
    """GET /health/cluster on the leader every `interval` s until stopped."""

    def __init__(self, cluster: Cluster, interval: float = 0.05, max_s: float = 660) -> None:
        super().__init__(daemon=True)
        self.leader = cluster.leader()
        self.interval = interval
        self.max_s = max_s
        self.stop_event = threading.Event()
        self.cluster_lag: list[float] = []
        self.follower_lag: list[float] = []
        self.not_leader = 0
        self.errors = 0

    def run(self) -> None:
        stop_at = time.monotonic() + self.max_s
        with httpx.Client(timeout=2) as client:
            while not self.stop_event.is_set() and time.monotonic() < stop_at:
                self._sample(client)
                self.stop_event.wait(self.interval)

    def _sample(self, client: httpx.Client) -> None:
        try:
            view = client.get(f"{self.leader.url}/health/cluster").json()
        except (httpx.HTTPError, ValueError):
            self.errors += 1
            return
        if view.get("leader") != self.leader.name:
            self.not_leader += 1
            return
        self.cluster_lag.append(float(view.get("replicationLag") or 0.0))
        for node in view.get("nodes", []):
            if node.get("name") != self.leader.name and node.get("lagMs") is not None:
                self.follower_lag.append(float(node["lagMs"]))

    def report(self) -> dict[str, Any]:
        return {
            "samples": len(self.cluster_lag),
            "replicationLagMs": summarize(self.cluster_lag, 3),
            "followerLagMs": summarize(self.follower_lag, 3),
            "samplesNotLeader": self.not_leader,
            "sampleErrors": self.errors,
        }


def _by_node(cluster: Cluster, by_url: dict[str, Any]) -> dict[str, Any]:
    """Name each node's latency summary, marking the one that led at the end (none is
    marked if the nodes do not agree on one: the run's figures are kept either way)."""
    try:
        leader = cluster.leader(timeout=5).name
    except AssertionError:
        leader = None
    named = {}
    for node in cluster.nodes:
        summary = by_url.get(execute_url(node))
        if summary is not None:
            named[node.name + (" (leader)" if node.name == leader else "")] = summary
    return named


def latency(
    cluster: Cluster,
    rate: float,
    duration: float,
    lag_interval: float = 0.05,
    pacer: str = "thread",
) -> dict[str, Any]:
    warm_up(cluster)
    sampler = LagSampler(cluster, interval=lag_interval)
    meter = CpuMeter(node_pids(cluster))
    meter.start()
    sampler.start()
    try:
        args = ["open", *_url_args(cluster), "--token", OPERATE_TOKEN]
        args += ["--rate", str(rate), "--duration", str(duration), "--pacer", pacer]
        load = _loadgen(args, timeout=duration + 60)
    finally:
        sampler.stop_event.set()
        sampler.join(timeout=5)
    cpu = meter.stop()
    codes = load["codes"]
    return {
        "rate": rate,
        "durationS": duration,
        "latencyMs": load["latencyMs"],
        "latencyMsByNode": _by_node(cluster, load.get("latencyMsByUrl", {})),
        "sendLagMs": load["sendLagMs"],
        "pacer": pacer,
        "codes": codes,
        "errorCount": sum(n for c, n in codes.items() if c != "200"),
        "lag": {**sampler.report(), "intervalS": lag_interval},
        "nodeCpuPct": cpu,
    }


# ---- (e) idle CPU and RSS ---------------------------------------------------
def idle(cluster: Cluster, seconds: float, settle_s: float = 3.0) -> dict[str, Any]:
    time.sleep(settle_s)
    pids = node_pids(cluster)
    meter = CpuMeter(pids)
    meter.start()
    time.sleep(seconds)
    cpu = meter.stop()
    return {
        "seconds": seconds,
        "cpuPctOfOneCore": cpu,
        "maxCpuPct": max(cpu.values()),
        "rssMiB": {name: rss_mib(pid) for name, pid in pids.items()},
    }


# ---- (d) failover -----------------------------------------------------------
async def _first_write(nodes: list[Node], max_s: float, every_s: float = 0.01) -> float | None:
    """Send a write every `every_s` to the given nodes in turn; return the
    monotonic time of the first 200, or None after max_s."""
    first: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def attempt(client: httpx.AsyncClient, node: Node) -> None:
        try:
            response = await client.post(execute_url(node))
        except httpx.HTTPError:
            return
        if response.status_code == 200 and not first.done():
            first.set_result(time.monotonic())

    limits = httpx.Limits(max_connections=400)
    async with httpx.AsyncClient(headers=auth_headers(), timeout=5, limits=limits) as client:
        tasks: list[asyncio.Task] = []
        stop_at = time.monotonic() + max_s
        i = 0
        while not first.done() and time.monotonic() < stop_at:
            tasks.append(asyncio.create_task(attempt(client, nodes[i % len(nodes)])))
            i += 1
            await asyncio.sleep(every_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return first.result() if first.done() else None


def failover_trial(cluster: Cluster, quiet_s: float = 1.0, max_s: float = 30) -> dict[str, Any]:
    leader = cluster.leader()
    time.sleep(quiet_s)  # an idle spell: the state the next kill finds the links in
    survivors = [n for n in cluster.live_nodes() if n is not leader]
    t0 = time.monotonic()
    cluster.kill(leader)
    t1 = asyncio.run(_first_write(survivors, max_s))
    new_leader = cluster.leader().name
    # Bring the killed node back and let the cluster settle before the next trial.
    cluster.start_node(leader)
    cluster.wait_ready([leader])
    cluster.wait_converged(timeout=60)
    cluster.leader()
    return {
        "killed": leader.name,
        "newLeader": new_leader,
        "failoverS": None if t1 is None else round(t1 - t0, 3),
    }


def _views(cluster: Cluster, nodes: list[Node]) -> list[dict[str, Any]]:
    return [cluster.get(n, "/health/node", timeout=2).json() for n in nodes]


def silent_failover_trial(
    cluster: Cluster, quiet_s: float = 1.0, max_s: float = 30, watch_s: float = 3.0
) -> dict[str, Any]:
    """SIGSTOP the leader (no socket closes, so only the election timeout and
    CheckQuorum notice), time the first 200 from a survivor, then SIGCONT it and
    watch the survivors for `watch_s`: the term must not move again (no flapping)
    and the new leader must stay."""
    leader = cluster.leader()
    time.sleep(quiet_s)
    survivors = [n for n in cluster.live_nodes() if n is not leader]
    assert leader.proc is not None
    t0 = time.monotonic()
    leader.proc.send_signal(signal.SIGSTOP)
    try:
        t1 = asyncio.run(_first_write(survivors, max_s))
        after = _views(cluster, survivors)
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    term_after = max(v["term"] for v in after)
    new_leader = next((v["leader"] for v in after if v["leader"]), None)
    terms, leaders = {term_after}, {new_leader}
    while time.monotonic() - resumed < watch_s:
        for v in _views(cluster, cluster.live_nodes()):
            terms.add(v["term"])
            if v["leader"]:
                leaders.add(v["leader"])
        time.sleep(0.05)
    cluster.wait_converged(timeout=60)
    return {
        "stopped": leader.name,
        "newLeader": new_leader,
        "failoverS": None if t1 is None else round(t1 - t0, 3),
        # Terms seen after the stopped node came back beyond the new leader's.
        "termBumpsAfterReturn": max(terms) - term_after,
        "leadersAfterReturn": sorted(str(x) for x in leaders),
    }


def failover(
    cluster: Cluster, trials: int, quiet_s: float = 1.0, silent: bool = False
) -> dict[str, Any]:
    warm_up(cluster)
    results = []
    trial_of = silent_failover_trial if silent else failover_trial
    for i in range(trials):
        trial = trial_of(cluster, quiet_s)
        print(f"  failover trial {i + 1}/{trials}: {trial}", flush=True)
        results.append(trial)
    times = [t["failoverS"] for t in results if t["failoverS"] is not None]
    return {
        "quietS": quiet_s,
        "silent": silent,
        "flappingTrials": sum(1 for t in results if t.get("termBumpsAfterReturn")),
        "trials": results,
        "failoverS": summarize(times, 3),
        "failedTrials": sum(1 for t in results if t["failoverS"] is None),
    }
