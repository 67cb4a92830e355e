"""Execution rollups: the arithmetic that runs inside replicated methods.

BOUND BY STATE-MACHINE COMPATIBILITY. `new_rollup`, `add_execution`, `merge_rollups`,
`minute_of`, `window_rollup` and `prune_rollups` run inside pysyncobj ``@replicated``
methods (daemon/state.py), and rollups are pickled into every node's snapshots:

- an exception there stalls the whole cluster (every node retries the same log entry
  forever), so they never raise on valid input;
- any non-determinism makes replicas diverge, so they read no clock or random source
  and iterate in sorted order where order matters;
- the data is plain lists/dicts of ints and floats, so the state stays picklable and
  cheap to snapshot; the list layout (the slot constants, BUCKETS_MS) is part of the
  replicated state. Changing any of it, or what a function computes, makes nodes on
  different code compute different states from the same log (a rolling upgrade, a
  journal replayed after one): such a change goes in a new replicated method at a
  higher ``ver=`` (daemon/state.py's rules), never an in-place edit here.

Reading rollups for people and scrapers (summaries, quantiles, Prometheus) is
daemon/exposition.py, which is free to change.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

# Upper bounds in ms; a final +Inf slot is implied. Dense below 100 ms because the
# runbook's SLO is "P95 < 100 ms": the estimate is only as good as the buckets around it.
BUCKETS_MS: tuple[float, ...] = (
    1,
    2.5,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
)
STATUSES = ("success", "failure", "timeout")

# Positions inside a rollup list. A list (not a dict or dataclass) keeps pickles small:
# 31 days of per-minute rollups is ~45k of them in the replicated state.
COUNT, SUCCESS, FAILURE, TIMEOUT, SUM, HIST = range(6)
STATUS_SLOT = {"success": SUCCESS, "failure": FAILURE, "timeout": TIMEOUT}
NBUCKETS = len(BUCKETS_MS) + 1

DEFAULT_KEEP_MINUTES = 31 * 24 * 60


def new_rollup() -> list:
    """Return an empty rollup.

    Shape: ``[count, success, failure, timeout, sum_duration_ms, hist]`` where ``hist``
    holds ``len(BUCKETS_MS) + 1`` non-cumulative counts per bucket, the last one +Inf.
    """
    return [0, 0, 0, 0, 0.0, [0] * NBUCKETS]


def _clean_duration(duration_ms: Any) -> float:
    # A bad duration must not poison the sum for 31 days nor make JSON unserialisable
    # (inf/NaN are not JSON), so anything that is not a finite non-negative number is 0.
    try:
        value = float(duration_ms)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if not math.isfinite(value) or value < 0:
        return 0.0
    return value


def add_execution(rollup: list, status: str, duration_ms: float) -> None:
    """Count one execution into ``rollup`` in place.

    An unknown status counts as a failure (something went wrong that we cannot
    name; hiding it would inflate the success rate). Negative, NaN or infinite
    durations count as 0 ms.
    """
    value = _clean_duration(duration_ms)
    slot = STATUS_SLOT.get(status, FAILURE) if isinstance(status, str) else FAILURE
    rollup[COUNT] += 1
    rollup[slot] += 1
    rollup[SUM] += value
    # bisect_left gives Prometheus "le" semantics: a value equal to a bound belongs to it.
    rollup[HIST][bisect_left(BUCKETS_MS, value)] += 1


def merge_rollups(rollups: Iterable[list]) -> list:
    """Return a new rollup that is the sum of ``rollups`` (empty input -> empty rollup)."""
    total = new_rollup()
    hist = total[HIST]
    for rollup in rollups:
        for slot in (COUNT, SUCCESS, FAILURE, TIMEOUT, SUM):
            total[slot] += rollup[slot]
        # Slicing tolerates a histogram of another length (another code version) without raising.
        for i, n in enumerate(rollup[HIST][:NBUCKETS]):
            hist[i] += n
    return total


def minute_of(epoch_s: float) -> int:
    """Return the minute bucket key for a Unix timestamp in seconds.

    Called inside replicated methods, so a timestamp that is not a finite number maps
    to minute 0 (pruned soon after) instead of raising and stalling the cluster.
    """
    try:
        return int(epoch_s // 60)
    except (TypeError, ValueError, OverflowError):
        return 0


def window_rollup(rollups_by_minute: dict[int, list], now_minute: int, minutes: int) -> list:
    """Merge the per-minute rollups with ``now_minute - minutes < minute <= now_minute``."""
    start = now_minute - minutes
    return merge_rollups(
        rollup for minute, rollup in rollups_by_minute.items() if start < minute <= now_minute
    )


def prune_rollups(
    rollups_by_minute: dict[int, list],
    now_minute: int,
    keep_minutes: int = DEFAULT_KEEP_MINUTES,
) -> None:
    """Drop, in place, minutes that ``window_rollup(..., now_minute, keep_minutes)`` would skip.

    Minutes after ``now_minute`` are kept: a new leader's clock may be slightly behind
    the previous one's, and its data is still current.
    """
    cutoff = now_minute - keep_minutes
    # Collect first (sorted, so every replica deletes in the same order), then delete:
    # mutating a dict while iterating it raises.
    for minute in sorted(m for m in rollups_by_minute if m <= cutoff):
        del rollups_by_minute[minute]


def is_rollup(value: Any) -> bool:
    """True when `value` has the rollup shape of this code version."""
    return (
        isinstance(value, list)
        and len(value) == HIST + 1
        and isinstance(value[HIST], list)
        and len(value[HIST]) == NBUCKETS
    )
