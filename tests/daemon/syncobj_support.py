"""Helpers for tests that drive the daemon's SyncObj in this process (no HTTP)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def committed(call: Callable[..., None], *args: object, within_s: float = 10) -> None:
    """Call a replicated method and wait until pysyncobj reports it committed."""
    done = threading.Event()
    errors: list[int] = []
    call(*args, callback=lambda result, error: (errors.append(error), done.set()))
    assert done.wait(within_s) and errors == [0], errors


def record(n: int) -> dict:
    """An execution record, as the daemon replicates it."""
    return {
        "id": f"id-{n}",
        "operationId": "noop",
        "status": "success",
        "duration": 0.001,
        "finishedAtEpoch": 1_795_000_000.0 + n,
    }
