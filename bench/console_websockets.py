"""Websockets: N dashboard clients on /ws/events/, events appended from another process.

Every client must receive every appended event exactly once, in order; latency is
from the append (wall clock in the payload) to the client's receipt.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import CpuMeter, rss_mib, summarize
from bench.console_common import (
    CLUSTER_NAME,
    DB_MODES,
    console_env,
    create_cluster_row,
    create_user_and_session,
    daphne,
    recreate_database,
    setup_django,
)
from bench.console_ws import WebSocket, WebSocketClosed

UNUSED_SEED_URL = "http://127.0.0.1:9"
GRACE_S = 30.0  # after the last append, for every client to receive every event


@dataclass
class ClientLog:
    ids: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    error: str = ""


async def open_client(url: str, cookie: str) -> tuple[WebSocket, int]:
    parts = urlsplit(url)
    headers = {"Origin": f"http://{parts.hostname}", "Cookie": f"sessionid={cookie}"}
    path = f"/ws/events/?cluster={CLUSTER_NAME}"
    ws = await WebSocket.connect(parts.hostname or "", parts.port or 80, path, headers)
    snapshot = await asyncio.wait_for(ws.recv_json(), 10)
    if snapshot.get("type") != "snapshot":
        raise RuntimeError(f"expected a snapshot, got {snapshot}")
    return ws, int(snapshot["last_id"])


def events_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events a frame carries: one (`event`), several (`events`), or none."""
    if message.get("type") == "event":
        return [message["event"]]
    if message.get("type") == "events":
        return message["events"]
    return []


async def receive(ws: WebSocket, log: ClientLog, count: int) -> None:
    # No timeout per message (a `wait_for` per frame made a task per frame, a cost of
    # the client's, not the server's): `drive` cancels whoever is still waiting.
    try:
        while len(log.ids) < count:
            message = await ws.recv_json()
            received = time.time()
            for event in events_of(message):
                log.ids.append(int(event["id"]))
                log.latencies_ms.append((received - float(event["payload"]["t"])) * 1000)
    except WebSocketClosed as exc:
        log.error = type(exc).__name__ + str(exc)


def run_appender(env: dict[str, str], count: int, rate: float, out: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "bench.console_append", "--count", str(count)]
    argv += ["--rate", str(rate), "--cluster", CLUSTER_NAME, "--out", str(out)]
    return subprocess.Popen(argv, env=env, start_new_session=True)


def check_client(log: ClientLog, expected: list[int]) -> dict[str, Any]:
    got = log.ids
    wanted = set(expected)
    in_order = all(a < b for a, b in itertools.pairwise(got))
    return {
        "received": len(got),
        "missed": len(wanted - set(got)),
        "duplicates": len(got) - len(set(got)),
        "unexpected": len(set(got) - wanted),
        "inOrder": in_order,
        "error": log.error,
    }


async def drive(
    url: str, cookie: str, env: dict[str, str], clients: int, count: int, rate: float
) -> dict[str, Any]:
    sockets = [await open_client(url, cookie) for _ in range(clients)]
    logs = [ClientLog() for _ in sockets]
    receivers = [
        asyncio.create_task(receive(ws, log, count))
        for (ws, _), log in zip(sockets, logs, strict=True)
    ]
    out = Path(tempfile.mkstemp(prefix="bench-append-", suffix=".json")[1])
    appender = run_appender(env, count, rate, out)
    try:
        # The grace counts from the last append, not from the schedule's end: on a busy
        # machine the appender falls behind its rate, and what it had not yet written
        # could not have been delivered (it was counted "missed" before).
        rc = await asyncio.to_thread(wait_appender, appender, count / rate * 10 + 60)
        _, late = await asyncio.wait(receivers, timeout=GRACE_S) if receivers else ((), ())
        for task in late:
            task.cancel()
        for task, log in zip(receivers, logs, strict=True):
            if task in late:
                log.error = "deadline"
    finally:
        for task in receivers:
            task.cancel()
        for ws, _ in sockets:
            await ws.close()
    written = json.loads(out.read_text()) if rc == 0 else {"ids": []}
    out.unlink(missing_ok=True)
    return {"appender": written, "appenderRc": rc, "logs": logs}


def wait_appender(appender: subprocess.Popen, timeout: float) -> int | None:
    try:
        return appender.wait(timeout)
    except subprocess.TimeoutExpired:
        appender.kill()
        appender.wait()
        return None


def summarize_run(result: dict[str, Any]) -> dict[str, Any]:
    expected = result["appender"]["ids"]
    checks = [check_client(log, expected) for log in result["logs"]]
    latencies = [ms for log in result["logs"] for ms in log.latencies_ms]
    appender = {k: v for k, v in result["appender"].items() if k != "ids"}
    return {
        "appended": len(expected),
        "appender": appender,
        "missedTotal": sum(c["missed"] for c in checks),
        "duplicatesTotal": sum(c["duplicates"] for c in checks),
        "unexpectedTotal": sum(c["unexpected"] for c in checks),
        "clientsOutOfOrder": sum(not c["inOrder"] for c in checks),
        "clientErrors": sorted({c["error"] for c in checks if c["error"]}),
        "latencyMs": summarize(latencies, 1),
    }


def websockets(
    redis: bool, clients: int, count: int, rate: float, logs: Path, db_mode: str = "pool"
) -> dict[str, Any]:
    """One run: fresh database, daphne with or without Redis, N clients, N events.

    db_mode: how daphne holds database connections (bench.console_common.DB_MODES)."""
    recreate_database()
    setup_django()
    cookie = create_user_and_session()
    # The console refuses a cluster without a seed; no collector runs in this bench, so
    # the address (discard port, nothing listens) is never dialled.
    create_cluster_row([UNUSED_SEED_URL])
    env = console_env(redis, **DB_MODES[db_mode])
    with daphne(env, logs) as (server, url):
        # The clients share this process (one loop, a pure-Python frame parser): its
        # CPU says whether they, not daphne, were the limit.
        meter = CpuMeter({"daphne": server.pid, "clients": os.getpid()})
        meter.start()
        result = asyncio.run(drive(url, cookie, env, clients, count, rate))
        cpu = meter.stop()
        rss = rss_mib(server.pid)
    summary = summarize_run(result)
    summary.update(
        layer="redis" if redis else "in-memory",
        clients=clients,
        rate=rate,
        dbMode=db_mode,
        daphneCpuPct=cpu["daphne"],
        daphneRssMiB=rss,
        clientProcessCpuPct=cpu["clients"],
    )
    return summary
