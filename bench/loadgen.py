"""HTTP load generator, run as its own process: `python -m bench.loadgen open|closed ...`.

open:   open-loop pacing at a fixed rate. Request i is due at t0 + i/rate and its
        latency is measured from that due time, so a slow server cannot slow the
        offered load down (no coordinated omission).
closed: N concurrent clients, each sending its next request when the last answers
        (the fallback when wrk is not installed).

The client is a small hand-written HTTP/1.1 keep-alive client on asyncio streams
(httpx costs several times more CPU per request, and the client shares the
machine with the cluster it measures).

Targets are spread round-robin over --url. Prints one JSON object on stdout.
Bounded: stops after --duration seconds (plus at most --timeout for stragglers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


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
        self.by_url: dict[str, list[float]] = {}

    def record(self, code: str, latency_ms: float, url: str = "") -> None:
        self.codes[code] += 1
        if code == "200":
            self.latencies_ms.append(latency_ms)
            self.by_url.setdefault(url, []).append(latency_ms)

    def report(self, elapsed_s: float) -> dict[str, Any]:
        ok = self.codes.get("200", 0)
        return {
            "elapsedS": round(elapsed_s, 3),
            "codes": dict(self.codes),
            "ok": ok,
            "okPerS": round(ok / elapsed_s, 1) if elapsed_s else 0.0,
            "latencyMs": summarize_ms(self.latencies_ms),
            "sendLagMs": summarize_ms(self.send_lag_ms),
            # The target holds "on any node": a follower forwards to the
            # leader, so its share is the slow one.
            "latencyMsByUrl": {url: summarize_ms(v) for url, v in sorted(self.by_url.items())},
        }


KEEPALIVE_S = 3.0


class Pool:
    """Keep-alive HTTP/1.1 connections to one host:port, written by hand.

    A raw asyncio client costs a fraction of httpx's CPU per request, which
    matters on a 2-core machine shared with the servers being measured.
    """

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.request = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A kept-alive connection idle for less than KEEPALIVE_S, else a new one
        (uvicorn closes connections idle for 5 s; reusing one would fail)."""
        now = time.monotonic()
        while self.idle:
            reader, writer, last_used = self.idle.pop()
            if now - last_used < KEEPALIVE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    async def roundtrip(self) -> int:
        reader, writer = await self._connection()
        try:
            writer.write(self.request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            lower = head.lower()
            length = 0
            if b"content-length:" in lower:
                length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if b"connection: close" in lower:
            writer.close()
        else:
            self.idle.append((reader, writer, time.monotonic()))
        return status

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def one(pool: Pool, due: float, timeout: float, rec: Recorder) -> None:
    try:
        code = str(await asyncio.wait_for(pool.roundtrip(), timeout))
    except TimeoutError:
        code = "timeout"
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        code = type(exc).__name__
    rec.record(code, (time.perf_counter() - due) * 1000, pool.url)


def pace(total: int, rate: float, t0: float, fire: Callable[[int, float], None]) -> None:
    """Call fire(i, due) at each request's due time, from a thread of its own.

    The event loop's own timers wake up to a millisecond late (epoll rounds its
    timeout up to whole milliseconds), and that lateness landed in every latency
    figure, since latency counts from the due time. time.sleep wakes within tens of
    microseconds, and call_soon_threadsafe wakes the loop through its self-pipe."""
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        fire(i, due)


async def open_loop(args: argparse.Namespace) -> dict[str, Any]:
    rec = Recorder()
    pools = [Pool(url, args.token) for url in args.url]
    total = int(args.rate * args.duration)
    tasks: list[asyncio.Task] = []
    loop = asyncio.get_running_loop()

    def start(i: int, due: float) -> None:
        rec.send_lag_ms.append(max(0.0, (time.perf_counter() - due) * 1000))
        tasks.append(asyncio.create_task(one(pools[i % len(pools)], due, args.timeout, rec)))

    t0 = time.perf_counter() + 0.05
    if args.pacer == "thread":
        # Every start() has run once this returns: the thread queued its last one before
        # to_thread queued its own completion, and the loop runs them in that order.
        await asyncio.to_thread(
            pace, total, args.rate, t0, lambda i, due: loop.call_soon_threadsafe(start, i, due)
        )
    else:
        for i in range(total):
            due = t0 + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            start(i, due)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    for pool in pools:
        pool.close()
    report = rec.report(elapsed)
    report.update(mode="open", rate=args.rate, offered=total, pacer=args.pacer)
    return report


async def closed_loop(args: argparse.Namespace) -> dict[str, Any]:
    rec = Recorder()
    pools = [Pool(url, args.token) for url in args.url]
    t0 = time.perf_counter()
    stop_at = t0 + args.duration

    async def worker(k: int) -> None:
        i = k
        while time.perf_counter() < stop_at:
            await one(pools[i % len(pools)], time.perf_counter(), args.timeout, rec)
            i += args.concurrency

    await asyncio.gather(*(worker(k) for k in range(args.concurrency)))
    elapsed = time.perf_counter() - t0
    for pool in pools:
        pool.close()
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
            p.add_argument(
                "--pacer",
                choices=("thread", "loop"),
                default="thread",
                help="what wakes at each due time: a thread of its own (on time within"
                " tens of µs) or the event loop's timer (up to ~1 ms late; the old way)",
            )
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
