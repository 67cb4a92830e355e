"""Benchmarks for the daemon cluster: `python -m bench.run <measurement> [options]`.

  inproc      (a) in-process ceiling: 3 pysyncobj nodes in one process, no HTTP
  throughput  (b) HTTP execute throughput of `noop`, clients spread over 3 nodes
  latency     (c) execute latency at a fixed open-loop rate, with (f) replication lag
  failover    (d) leader kill -9 -> first successful write, N trials
  idle        (e) idle CPU (% of one core) and RSS per node
  keepalive   HTTP floor: one kept-alive wrk connection on GET /health/live
  matrix      idle + latency/lag + failover for several Raft timing presets
  all         inproc, throughput, keepalive, latency, idle and failover at one timing

Each run prints a summary and writes bench/results/<name>-<time>.json with the
command, the machine, and the load average before and after. Every loop is
bounded in count and time; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from typing import Any

from bench import cluster_bench, inproc
from bench.common import PRESETS, RaftTiming, bounded, running_cluster, save_result, wait_quiet

NODELAY = [False]  # set from --tcp-nodelay-patch, recorded with every result
NODES = [3]  # set from --nodes, recorded with every result
Measurement = Callable[[argparse.Namespace, RaftTiming], dict[str, Any]]


def timing_of(args: argparse.Namespace) -> RaftTiming:
    base = PRESETS[args.preset]
    return RaftTiming(
        heartbeat_ms=args.heartbeat_ms if args.heartbeat_ms is not None else base.heartbeat_ms,
        election_ms=args.election_ms if args.election_ms is not None else base.election_ms,
        batch=args.batch if args.batch is not None else base.batch,
    )


def quiet(args: argparse.Namespace) -> dict[str, Any]:
    return wait_quiet(args.max_busy, args.max_wait)


def report(name: str, timing: RaftTiming, load: dict[str, Any], data: dict[str, Any]) -> None:
    label = timing.label + ("-nodelay" if NODELAY[0] else "")
    label += f"-n{NODES[0]}" if NODES[0] != 3 else ""
    path = save_result(
        f"{name}-{label}",
        {
            "timing": timing,
            "nodes": NODES[0],
            "tcpNodelayPatch": NODELAY[0],
            "nodePythonpath": os.environ.get("BENCH_NODE_PYTHONPATH", ""),
            **load,
            **data,
        },
    )
    print(
        f"== {name} [{label}] busy={load['cpuBusyPctBefore']}% load={load['loadBefore']} -> {path.name}"
    )
    print(json.dumps(data, indent=1, default=str)[:4000])


# ---- measurements ---------------------------------------------------------------
def do_inproc(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    load = quiet(args)
    data = inproc.run_inproc(timing, args.duration, args.inflight, args.target)
    report("inproc", timing, load, data)
    return data


def do_throughput(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    tool = args.tool or ("wrk" if cluster_bench.wrk_available() else "httpx")
    with running_cluster(timing, size=args.nodes, nodelay=args.tcp_nodelay_patch) as cluster:
        load = quiet(args)
        data = cluster_bench.throughput(cluster, args.duration, args.connections, tool)
    report("throughput", timing, load, data)
    return data


def do_latency(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    with running_cluster(timing, size=args.nodes, nodelay=args.tcp_nodelay_patch) as cluster:
        load = quiet(args)
        data = cluster_bench.latency(
            cluster, args.rate, args.duration, args.lag_interval, args.pacer
        )
    report("latency", timing, load, data)
    return data


def do_failover(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    with running_cluster(timing, size=args.nodes, nodelay=args.tcp_nodelay_patch) as cluster:
        load = quiet(args)
        data = cluster_bench.failover(cluster, args.trials, args.quiet_s, args.silent)
    report("failover", timing, load, data)
    return data


def do_idle(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    with running_cluster(timing, size=args.nodes, nodelay=args.tcp_nodelay_patch) as cluster:
        load = quiet(args)
        data = cluster_bench.idle(cluster, args.seconds)
    report("idle", timing, load, data)
    return data


def do_keepalive(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    with running_cluster(timing, size=args.nodes, nodelay=args.tcp_nodelay_patch) as cluster:
        load = quiet(args)
        data = cluster_bench.keepalive(cluster, args.seconds)
    report("keepalive", timing, load, data)
    return data


def one_cluster_suite(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    """idle, then latency+lag, then failover (which restarts nodes), on one cluster."""
    results: dict[str, Any] = {}
    with running_cluster(timing, size=args.nodes, nodelay=args.tcp_nodelay_patch) as cluster:
        for name, run in (
            ("idle", lambda: cluster_bench.idle(cluster, args.seconds)),
            (
                "latency",
                lambda: cluster_bench.latency(
                    cluster, args.rate, args.duration, args.lag_interval, args.pacer
                ),
            ),
            (
                "failover",
                lambda: cluster_bench.failover(cluster, args.trials, args.quiet_s, args.silent),
            ),
        ):
            load = quiet(args)
            results[name] = run()
            report(name, timing, load, results[name])
    return results


def do_matrix(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    out = {}
    for preset in args.presets.split(","):
        print(f"#### preset {preset}: {PRESETS[preset]}", flush=True)
        out[preset] = one_cluster_suite(args, PRESETS[preset])
    return out


def do_all(args: argparse.Namespace, timing: RaftTiming) -> dict[str, Any]:
    args.target = "all"
    ceiling = do_inproc(args, timing)
    http = do_throughput(args, timing)
    floor = do_keepalive(args, timing)
    ratio = http["executionsPerS"] / ceiling["commitsPerS"] if ceiling["commitsPerS"] else 0.0
    floor_ratio = (
        http["executionsPerS"] / floor["requestsPerS"] if floor.get("requestsPerS") else 0.0
    )
    print(f"== HTTP/in-process ratio (same run): {ratio:.3f}")
    print(f"== executions per HTTP-floor request (same run): {floor_ratio:.3f}")
    return {"ratio": ratio, "floorRatio": floor_ratio, **one_cluster_suite(args, timing)}


# ---- command line -----------------------------------------------------------
def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--heartbeat-ms", type=int, help="raft.heartbeatIntervalMs")
    p.add_argument("--election-ms", type=int, help="raft.electionTimeoutMs")
    p.add_argument("--batch", action=argparse.BooleanOptionalAction, help="raft.appendEntriesBatch")
    p.add_argument("--nodes", type=int, choices=(3, 5, 7), default=3, help="cluster size")
    p.add_argument(
        "--tcp-nodelay-patch",
        action="store_true",
        help="experiment: nodes run with TCP_NODELAY forced on (bench/nodelay)",
    )
    p.add_argument(
        "--max-busy", type=float, default=15.0, help="wait until machine CPU busy %% is below"
    )
    p.add_argument("--max-wait", type=float, default=90.0, help="...but at most this many s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    specs: dict[str, tuple[Measurement, str]] = {
        "inproc": (do_inproc, "(a) in-process ceiling"),
        "throughput": (do_throughput, "(b) HTTP throughput"),
        "latency": (do_latency, "(c)+(f) latency at a fixed rate, replication lag"),
        "failover": (do_failover, "(d) failover time"),
        "idle": (do_idle, "(e) idle CPU and RSS"),
        "keepalive": (do_keepalive, "HTTP floor: 1 kept-alive connection, GET /health/live"),
        "matrix": (do_matrix, "idle, latency and failover per timing preset"),
        "all": (do_all, "everything at one timing"),
    }
    for name, (func, text) in specs.items():
        p = sub.add_parser(name, help=text, description=text)
        common_options(p)
        p.set_defaults(func=func)
        if name in ("inproc", "throughput", "all"):
            p.add_argument("--duration", type=bounded(1, 300), default=15.0, help="seconds")
        if name in ("inproc", "all"):
            p.add_argument("--inflight", type=int, default=1000, help="max unanswered calls")
        if name == "inproc":
            p.add_argument("--target", choices=("all", "leader"), default="all")
        if name in ("throughput", "all"):
            p.add_argument("--connections", type=int, default=48, help="total, over 3 nodes")
            p.add_argument("--tool", choices=("wrk", "httpx"), help="default: wrk if installed")
        if name in ("latency", "matrix"):
            p.add_argument("--duration", type=bounded(1, 300), default=20.0, help="seconds")
        if name in ("latency", "matrix", "all"):
            p.add_argument("--rate", type=bounded(1, 5000), default=100.0, help="requests/s")
            p.add_argument(
                "--lag-interval",
                type=bounded(0.01, 10),
                default=0.05,
                help="seconds between the lag sampler's GET /health/cluster on the leader "
                "(each makes the leader ask every peer; the console's collector asks once a "
                "second)",
            )
            p.add_argument(
                "--pacer",
                choices=("thread", "loop"),
                default="thread",
                help="what sends each request at its due time: a thread (on time) or the "
                "load generator's event-loop timer (up to ~1 ms late, counted in the latency; "
                "the way of runs before 29 Nov 20:30)",
            )
        if name in ("failover", "matrix", "all"):
            p.add_argument("--trials", type=int, choices=range(1, 201), default=10, metavar="N")
            p.add_argument(
                "--quiet-s",
                type=bounded(0, 60),
                default=1.0,
                help="idle seconds before each kill (longer than pysyncobj's 3.5 s connection "
                "timeout tests idle follower links)",
            )
            p.add_argument(
                "--silent",
                action="store_true",
                help="SIGSTOP the leader instead of kill -9 (no socket closes); SIGCONT after",
            )
        if name in ("idle", "matrix", "all", "keepalive"):
            p.add_argument("--seconds", type=bounded(1, 120), default=10.0, help="idle window")
        if name == "matrix":
            p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated")
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: clusters are stopped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    if getattr(args, "tool", None) == "wrk" and not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk); use --tool httpx", file=sys.stderr)
        return 2
    NODELAY[0] = args.tcp_nodelay_patch
    NODES[0] = args.nodes
    args.func(args, timing_of(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
