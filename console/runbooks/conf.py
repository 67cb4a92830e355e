"""Runbook tunables, read from the environment at call time (tests and operators can
change them without reloading settings).

RUNBOOK_STALE_AFTER_S       a running run whose worker has been silent this long is stale (30)
RUNBOOK_QUEUED_TIMEOUT_S    a queued run no worker picked up in this long is stale (900)
RUNBOOK_DRAIN_TIMEOUT_S     how long a drain waits for the node's work to finish (600)
RUNBOOK_TRANSFER_MAX_LAG_MS a leadership target must lag less than this (100)
RUNBOOK_TRANSFER_MAX_LAG_ENTRIES ... and be at most this many entries behind (50)
RUNBOOK_CELERY_QUEUE        the Celery queue runs go to (empty: Celery's default queue)
RUNBOOK_GATE_GRACE_MS       a gate fails its step only after failing this long without a break (2000)
"""

from __future__ import annotations

from console.env import env_int, env_str

# How often a waiting step polls the daemon and proves the worker is alive. It must
# stay well under the stale threshold, so a healthy run is never reaped.
POLL_INTERVAL_S = 0.25


def stale_after_s() -> int:
    return env_int("RUNBOOK_STALE_AFTER_S", 30)


def queued_timeout_s() -> int:
    return env_int("RUNBOOK_QUEUED_TIMEOUT_S", 900)


def drain_timeout_s() -> int:
    return env_int("RUNBOOK_DRAIN_TIMEOUT_S", 600)


def transfer_max_lag_ms() -> int:
    return env_int("RUNBOOK_TRANSFER_MAX_LAG_MS", 100)


def transfer_max_lag_entries() -> int:
    return env_int("RUNBOOK_TRANSFER_MAX_LAG_ENTRIES", 50)


def celery_queue() -> str | None:
    return env_str("RUNBOOK_CELERY_QUEUE") or None


def gate_grace_s() -> float:
    """A gate's failure must last this long to fail its step: one sample of a node that is
    briefly slow (a lag spike on a busy machine) is not a failed upgrade. A soak's hold
    starts again once its gates are all true again."""
    return env_int("RUNBOOK_GATE_GRACE_MS", 2000) / 1000
