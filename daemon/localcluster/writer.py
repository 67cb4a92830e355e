"""A steady writer: executions at a fixed rate, sent the way a careful client sends them.

Used while nodes restart, upgrade or leave (tests, benchmarks). A request that a node
refuses for a reason that says "not here, not now" (503 draining or no quorum, 429,
a connection refused or reset) is sent to the next node, until it is acknowledged or
`retry_for_s` runs out. So a failed execution here means the cluster could not take
the work for that long, not that one node was briefly away. What was acknowledged (a
200 with an execution id) is kept, to check later that none of it was lost.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRYABLE_STATUS = {429, 502, 503, 504}


@dataclass
class WriterReport:
    offered: int = 0
    acknowledged: int = 0
    failed: int = 0  # never acknowledged within retry_for_s
    retried: int = 0  # acknowledged, but not by the first node asked
    attempt_errors: Counter = field(default_factory=Counter)  # per refused attempt
    max_latency_ms: float = 0.0
    elapsed_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "retried": self.retried,
            "attemptErrors": dict(self.attempt_errors),
            "maxLatencyMs": round(self.max_latency_ms, 1),
            "elapsedS": round(self.elapsed_s, 2),
        }


class SteadyWriter:
    def __init__(
        self,
        urls: Callable[[], list[str]],
        token: str | None,
        op_id: str,
        rate: float = 50.0,
        retry_for_s: float = 5.0,
    ) -> None:
        self.urls = urls  # asked before each request: the members change during a scale
        self.op_id = op_id
        self.rate = rate
        self.retry_for_s = retry_for_s
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.acknowledged_ids: list[str] = []
        self.report = WriterReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(timeout=10.0, limits=httpx.Limits(max_connections=64))
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="writer")

    def __enter__(self) -> SteadyWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._pace, name="writer-pace", daemon=True)
        self._t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> WriterReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._pool.shutdown(wait=True)
        self._http.close()
        self.report.elapsed_s = time.monotonic() - self._t0
        return self.report

    def _pace(self) -> None:
        i = 0
        while not self._stop.is_set():
            due = self._t0 + i / self.rate
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._pool.submit(self._one, i)
            i += 1
            with self._lock:
                self.report.offered += 1

    def _one(self, i: int) -> None:
        started = time.monotonic()
        deadline = started + self.retry_for_s
        attempt = 0
        while True:
            urls = self.urls()
            error = self._attempt(urls[(i + attempt) % len(urls)]) if urls else "no-nodes"
            if error is None:
                return self._done(started, attempt)
            with self._lock:
                self.report.attempt_errors[error] += 1
            attempt += 1
            final = error.isdigit() and int(error) not in RETRYABLE_STATUS
            if final or time.monotonic() >= deadline:
                with self._lock:
                    self.report.failed += 1
                return None
            time.sleep(0.02 if urls and attempt % len(urls) else 0.2)

    def _attempt(self, url: str) -> str | None:
        """None when acknowledged, else why not (a status code or an error name)."""
        try:
            response = self._http.post(f"{url}/execute/{self.op_id}", headers=self.headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if response.status_code == 200:
            with self._lock:
                self.acknowledged_ids.append(response.json()["id"])
            return None
        return str(response.status_code)

    def _done(self, started: float, attempt: int) -> None:
        latency = (time.monotonic() - started) * 1000
        with self._lock:
            self.report.acknowledged += 1
            self.report.retried += 1 if attempt else 0
            self.report.max_latency_ms = max(self.report.max_latency_ms, latency)


def executed_ids(url: str, token: str | None) -> set[str]:
    """Every execution id in a node's feed (its bounded window of FEED_WINDOW records)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ids: set[str] = set()
    after = 0
    with httpx.Client(timeout=10.0) as http:
        while True:
            page = http.get(
                f"{url}/executions", params={"after": after, "limit": 1000}, headers=headers
            ).json()
            ids.update(record["id"] for record in page["executions"])
            if not page["executions"]:
                return ids
            after = page["nextAfter"]
