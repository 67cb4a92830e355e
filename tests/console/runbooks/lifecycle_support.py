"""Helpers for the node lifecycle tests: a steady writer and the cluster's own view."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests import cluster_harness

WRITE_OP = {"id": "steady", "name": "Steady", "handler": {"kind": "noop"}}


@dataclass
class SteadyWriter:
    """Executes an operation `rate_per_s` times a second against the URLs `urls()` gives
    (a client behind a load balancer that knows which nodes are in service)."""

    urls: Callable[[], list[str]]
    rate_per_s: float = 50.0
    ok: int = 0
    # 503s answered before executing (no leader for a moment), retried as a client
    # honouring Retry-After would: counted, not failures.
    retried: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SteadyWriter:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        headers = {"Authorization": f"Bearer {cluster_harness.OPERATE_TOKEN}"}
        interval, due, turn = 1.0 / self.rate_per_s, time.monotonic(), 0
        with httpx.Client(headers=headers, timeout=10) as http:
            while not self._stop.is_set():
                urls = self.urls()
                url = urls[turn % len(urls)]
                turn += 1
                self._one(http, url)
                due += interval
                self._stop.wait(max(0.0, due - time.monotonic()))

    def _one(self, http: httpx.Client, url: str, attempts: int = 5) -> None:
        for attempt in range(attempts):
            try:
                answer = http.post(f"{url}/execute/{WRITE_OP['id']}")
            except httpx.HTTPError as err:
                self.failures.append(f"{url}: {err!r}")
                return
            if answer.status_code < 300:
                self.ok += 1
                return
            if answer.status_code != 503 or attempt == attempts - 1:
                self.failures.append(f"{url}: {answer.status_code} {answer.text[:200]}")
                return
            self.retried += 1
            time.sleep(0.2)

    def stop(self) -> SteadyWriter:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return self
