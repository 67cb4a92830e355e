"""Polling with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

# What a condition that talks to a node raises while the node is still coming up.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, OSError, ValueError, KeyError)


def wait_until(condition: Callable[[], bool], deadline: float, interval_s: float = 0.05) -> bool:
    """Poll `condition` until it holds (True) or the monotonic `deadline` passes (False)."""
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 20.0,
    what: str = "",
    *,
    interval: float = 0.05,
) -> Any:
    """Poll until condition() is truthy and return its value; errors a node gives while it
    comes up count as "not yet". At the deadline, raise AssertionError naming `what` and
    the last error (a failed test, for pytest; a failed run, for a benchmark)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except TRANSIENT_ERRORS as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what or condition}{detail}"
            )
        time.sleep(interval)
