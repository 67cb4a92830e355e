"""HTTP load generator, run as its own process: `python -m bench.loadgen open|closed ...`.

open:   open-loop pacing at a fixed rate. Request i is due at t0 + i/rate and its
        latency is measured from that due time, so a slow server cannot slow the
        offered load down (no coordinated omission).
closed: N concurrent clients, each sending its next request when the last answers
        (the httpx fallback when wrk is not installed).

Targets are spread round-robin over --url. Prints one JSON object on stdout.
Bounded: stops after --duration seconds (plus at most --timeout for stragglers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx


def summarize_ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(q: float) -> float:
        rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
        return round(ordered[rank - 1], 2)

    return {
        "n": len(ordered),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


class Recorder:
    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()
        self.latencies_ms: list[float] = []
        self.send_lag_ms: list[float] = []

    def record(self, code: str, latency_ms: float) -> None:
        self.codes[code] += 1
        if code == "200":
            self.latencies_ms.append(latency_ms)

    def report(self, elapsed_s: float) -> dict[str, Any]:
        ok = self.codes.get("200", 0)
        return {
            "elapsedS": round(elapsed_s, 3),
            "codes": dict(self.codes),
            "ok": ok,
            "okPerS": round(ok / elapsed_s, 1) if elapsed_s else 0.0,
            "latencyMs": summarize_ms(self.latencies_ms),
            "sendLagMs": summarize_ms(self.send_lag_ms),
        }


async def one(client: httpx.AsyncClient, url: str, due: float, rec: Recorder) -> None:
    try:
        response = await client.post(url)
        code = str(response.status_code)
    except httpx.TimeoutException:
        code = "timeout"
    except httpx.HTTPError as exc:
        code = type(exc).__name__
    rec.record(code, (time.perf_counter() - due) * 1000)


def make_client(token: str, timeout: float, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def open_loop(args: argparse.Namespace) -> dict[str, Any]:
    rec = Recorder()
    total = int(args.rate * args.duration)
    async with make_client(args.token, args.timeout, args.connections) as client:
        tasks: list[asyncio.Task] = []
        t0 = time.perf_counter() + 0.05
        for i in range(total):
            due = t0 + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            rec.send_lag_ms.append(max(0.0, (time.perf_counter() - due) * 1000))
            url = args.url[i % len(args.url)]
            tasks.append(asyncio.create_task(one(client, url, due, rec)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    report = rec.report(elapsed)
    report.update(mode="open", rate=args.rate, offered=total)
    return report


async def closed_loop(args: argparse.Namespace) -> dict[str, Any]:
    rec = Recorder()
    async with make_client(args.token, args.timeout, args.concurrency) as client:
        t0 = time.perf_counter()
        stop_at = t0 + args.duration

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < stop_at:
                await one(client, args.url[i % len(args.url)], time.perf_counter(), rec)
                i += args.concurrency

        await asyncio.gather(*(worker(k) for k in range(args.concurrency)))
        elapsed = time.perf_counter() - t0
    report = rec.report(elapsed)
    report.update(mode="closed", concurrency=args.concurrency)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("open", "closed"):
        p = sub.add_parser(name)
        p.add_argument("--url", action="append", required=True, help="repeat for each node")
        p.add_argument("--token", required=True)
        p.add_argument("--duration", type=float, default=20.0, help="seconds (max 600)")
        p.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
        if name == "open":
            p.add_argument("--rate", type=float, default=100.0, help="requests/s")
            p.add_argument("--connections", type=int, default=200)
        else:
            p.add_argument("--concurrency", type=int, default=48)
    args = parser.parse_args(argv)
    args.duration = min(args.duration, 600.0)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runner = open_loop if args.mode == "open" else closed_loop
    print(json.dumps(asyncio.run(runner(args))))


if __name__ == "__main__":
    main()
