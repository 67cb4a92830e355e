"""A steady writer: a few threads executing round-robin over the nodes, each
remembering what it was told (the checker judges only what clients saw)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

import httpx


class Writer:
    def __init__(
        self, urls: list[str], op: str, token: str, threads: int = 4, timeout_s: float = 3
    ):
        self.urls, self.op, self.timeout_s = urls, op, timeout_s
        self.headers = {"Authorization": f"Bearer {token}"}
        self.acked: list[tuple[float, str]] = []  # (monotonic time, execution id)
        self.latencies: list[tuple[float, float]] = []  # (when acknowledged, seconds taken)
        self.outcomes: Counter[str] = Counter()
        self.slowest_failure_s = 0.0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, offset: int) -> None:
        order = itertools.cycle(
            self.urls[offset % len(self.urls) :] + self.urls[: offset % len(self.urls)]
        )
        with httpx.Client(timeout=self.timeout_s, headers=self.headers) as client:
            for url in order:
                if self.stop.is_set():
                    return
                started = time.monotonic()
                try:
                    response = client.post(f"{url}/execute/{self.op}")
                except httpx.TimeoutException:
                    self._note("timeout", started)
                    continue
                except httpx.HTTPError:
                    self._note("connection-error", started)
                    time.sleep(0.05)  # a node that is down: do not spin on it
                    continue
                if response.status_code == 200:
                    with self.lock:
                        now = time.monotonic()
                        self.acked.append((now, response.json()["id"]))
                        self.latencies.append((now, now - started))
                        self.outcomes["200"] += 1
                else:
                    self._note(str(response.status_code), started)

    def _note(self, outcome: str, started: float) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            self.slowest_failure_s = max(self.slowest_failure_s, time.monotonic() - started)

    def acked_ids(self) -> list[str]:
        with self.lock:
            return [rid for _, rid in self.acked]

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def first_ack_after(self, moment: float) -> float | None:
        """Seconds from `moment` to the first acknowledged write after it."""
        with self.lock:
            later = [at for at, _ in self.acked if at > moment]
        return min(later) - moment if later else None

    def median_latency(self, start: float, end: float) -> float | None:
        """The median time to an acknowledgement, of those acknowledged in [start, end]."""
        with self.lock:
            taken = sorted(s for at, s in self.latencies if start <= at <= end)
        return taken[len(taken) // 2] if taken else None

    def __enter__(self) -> Writer:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
