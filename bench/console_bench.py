"""Benchmarks for the operator console: `python -m bench.console_bench <measurement>`.

  freshness   leader kill -9 -> the browser's DOM shows the new leader (and the raw
              election time from /health/node), N trials, in-memory layer and Redis
  collector   `manage.py collect` CPU (% of one core) and RSS watching 1 and 10 clusters of 5
              nodes under a light writer; mirrored rows checked against each daemon feed
  history     p95 of GET /api/clusters/{name}/executions over 1,000,000 rows (--rows,
              --database and --reuse for 10,000,000 kept between runs), via daphne
  websockets  N dashboard clients, M events appended from another process: exactly once,
              in order, latency append -> receipt; in-memory layer and Redis

Everything runs on 127.0.0.1 against a scratch PostgreSQL database `bench_console`
(dropped and re-created per measurement) and Redis db 11. Each run prints a summary
and writes bench/results/console-<measurement>-<time>.json with the command, the
machine and the load average before and after. Loops are bounded in count and time;
every process started is stopped at the end (or on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import bounded, wait_quiet
from bench.console_common import DB_MODES, save, use_database

Measurement = Callable[[argparse.Namespace, Path], dict[str, Any]]


def layers(choice: str) -> list[bool]:
    """--layer memory|redis|both -> [redis?] in run order."""
    return {"memory": [False], "redis": [True], "both": [False, True]}[choice]


def quiet(args: argparse.Namespace) -> dict[str, Any]:
    return wait_quiet(args.max_busy, args.max_wait, max_load=args.max_load)


def do_websockets(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    from bench.console_websockets import websockets

    runs = []
    for redis in layers(args.layer):
        for clients in (
            [args.baseline_clients, args.clients] if args.baseline_clients else [args.clients]
        ):
            load = quiet(args)
            run = websockets(redis, clients, args.events, args.rate, logs, args.db)
            runs.append({**load, **run})
            print(json.dumps(run, indent=1)[:3000])
    return {"runs": runs}


def do_freshness(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    from bench.console_freshness import freshness

    runs = []
    for redis in layers(args.layer):
        load = quiet(args)
        run = freshness(redis, args.trials, args.settle, logs)
        runs.append({**load, **run})
        print(json.dumps({k: v for k, v in run.items() if k != "trials"}, indent=1))
    return {"runs": runs}


def do_collector(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    from bench.console_collector import collector_cost

    if args.database:
        use_database(args.database)
    runs = []
    for clusters in args.clusters:
        for size in args.sizes:
            load = quiet(args)
            run = collector_cost(clusters, size, args.duration, args.settle, args.rate, logs)
            runs.append({**load, **run})
            print(json.dumps(run, indent=1))
    return {"runs": runs}


def do_history(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    from bench.console_history import history

    if args.database:
        use_database(args.database)
    return history(args.rows, args.requests, args.db, lambda: quiet(args), logs, args.reuse)


MEASUREMENTS: dict[str, Measurement] = {
    "freshness": do_freshness,
    "collector": do_collector,
    "history": do_history,
    "websockets": do_websockets,
}


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-load", type=float, default=1.5, help="wait for 1-min load below this")
    p.add_argument("--max-busy", type=float, default=30.0, help="...and CPU busy %% below this")
    p.add_argument("--max-wait", type=bounded(0, 600), default=180.0, help="...at most this, s")
    p.add_argument("--keep-logs", action="store_true", help="keep the process logs' temp dir")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.console_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("freshness", help="leader kill -> DOM shows the new leader")
    p.add_argument("--trials", type=bounded(1, 50, int), default=10)
    p.add_argument("--settle", type=bounded(0, 30), default=7.0, help="s idle before each kill")
    p.add_argument("--layer", choices=("memory", "redis", "both"), default="both")
    p = sub.add_parser("collector", help="collector CPU for C clusters of N nodes")
    p.add_argument("--sizes", type=bounded(1, 9, int), nargs="+", default=[5])
    p.add_argument(
        "--clusters",
        type=bounded(1, 20, int),
        nargs="+",
        default=[1, 10],
        help="clusters watched at once, one run each (the first is the baseline)",
    )
    p.add_argument("--rate", type=bounded(0.1, 100), default=2.0, help="executions/s per cluster")
    p.add_argument(
        "--database",
        default="",
        help="scratch PostgreSQL database to use instead of bench_console (never test)",
    )
    p.add_argument("--duration", type=bounded(5, 120), default=30.0, help="s measured")
    p.add_argument("--settle", type=bounded(0, 30), default=5.0, help="s before measuring")
    p = sub.add_parser("history", help="history API p95 over 1M (or 10M) rows")
    p.add_argument("--rows", type=bounded(1000, 20_000_000, int), default=1_000_000)
    p.add_argument(
        "--database",
        default="",
        help="scratch PostgreSQL database to use instead of bench_console (never test)",
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database if it already holds exactly --rows rows (migrated first); "
        "generating 10M rows takes minutes",
    )
    p.add_argument("--requests", type=bounded(10, 2000, int), default=100, help="per case")
    p.add_argument(
        "--db",
        choices=sorted(DB_MODES),
        nargs="+",
        default=["per-request", "pool"],
        help="daphne's database connections, one run each; later runs are compared with the "
        "first as a ratio (pool: the shipped psycopg pool; per-request: the console before "
        "it; max-age-60: DB_CONN_MAX_AGE=60)",
    )
    p = sub.add_parser("websockets", help="N clients, every event exactly once")
    p.add_argument("--clients", type=bounded(1, 1000, int), default=50)
    p.add_argument("--events", type=bounded(1, 20_000, int), default=2000)
    p.add_argument("--rate", type=bounded(1, 1000), default=100.0, help="events per second")
    p.add_argument(
        "--baseline-clients",
        type=bounded(0, 200, int),
        default=1,
        help="a run with this many clients first, same events (0: none)",
    )
    p.add_argument(
        "--db",
        choices=sorted(DB_MODES),
        default="pool",
        help="daphne's database connections (default: the shipped psycopg pool)",
    )
    p.add_argument("--layer", choices=("memory", "redis", "both"), default="both")
    for choice in sub.choices.values():
        common_options(choice)
    return parser


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every context manager stops its processes.
    signal.signal(signal.SIGTERM, interrupt)
    logs = Path(tempfile.mkdtemp(prefix="bench-console-logs-"))
    try:
        data = MEASUREMENTS[args.command](args, logs)
    finally:
        if args.keep_logs:
            print(f"logs kept in {logs}")
        else:
            shutil.rmtree(logs, ignore_errors=True)
    path = save(args.command, {"args": vars(args), **data})
    print(f"== console {args.command} -> {path}")


if __name__ == "__main__":
    sys.exit(main())
