"""What the soak's error-ratio and p95 gates measure: the cluster's executions, read from
the daemons' own executions feed (`GET /executions`), never from the console's samples
(which exist only while a collector runs, so gates built on them passed vacuously).

The feed is replicated state in commit order (`seq`), so any member can be read and the
reader may move to another node between two reads (a leader change) without missing or
double-counting a record. Each record says its status and its handler duration.

- `measure_baseline`: the executions that finished in the minute before the upgrade.
- `SoakWindow`: the executions committed since the soak's first check, read a page at a
  time on each check (only what is new since the last read).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from console.clusters.daemon_client import DaemonError
from console.runbooks.actions.base import StepContext
from console.runbooks.live import ClusterView, url_of

BASELINE_WINDOW_S = 60.0
# At most this many of the newest records are read for the baseline (~2 min at 50/s):
# enough for a ratio and a p95, bounded on a busy cluster.
BASELINE_MAX_RECORDS = 6000
PAGE = 1000
# Durations kept for the soak's p95; past this a uniform reservoir sample is kept.
MAX_DURATIONS = 20000
BEYOND_ANY_SEQ = 2**62  # the feed's largest `after`: answers with no record, only latestSeq


class FeedUnreadable(Exception):
    """No member answered the executions feed; the message says what each answered."""


@dataclass
class Tally:
    """Counts over a set of executions: how many, how many did not succeed, durations."""

    executions: int = 0
    failed: int = 0
    durations: list[float] = field(default_factory=list)
    failed_on: Counter = field(default_factory=Counter)  # node -> failed executions

    def add(self, record: dict[str, Any]) -> None:
        self.executions += 1
        if record.get("status") != "success":
            self.failed += 1
            self.failed_on[str(record.get("node"))] += 1
        duration = float(record.get("duration") or 0.0)
        if len(self.durations) < MAX_DURATIONS:
            self.durations.append(duration)
        elif (slot := random.randrange(self.executions)) < MAX_DURATIONS:
            self.durations[slot] = duration

    @property
    def error_ratio(self) -> float | None:
        return round(self.failed / self.executions, 4) if self.executions else None

    @property
    def p95_ms(self) -> float | None:
        if not self.durations:
            return None
        ordered = sorted(self.durations)
        return round(ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)], 3)


def feed_urls(view: ClusterView) -> list[str]:
    """Where to read the feed: the leader first (it has everything committed), then
    every other member its peers reach."""
    members = sorted(view.members, key=lambda m: (m.name != view.leader, m.name))
    return [url_of(m) for m in members if url_of(m) and (m.reachable or m.name == view.leader)]


def _first_answer(ctx: StepContext, view: ClusterView, params: dict[str, int]) -> dict:
    errors = []
    for url in feed_urls(view):
        try:
            page = ctx.client.get(url, "/executions", params)
        except DaemonError as err:
            errors.append(str(err))
            continue
        if isinstance(page, dict) and isinstance(page.get("executions"), list):
            return page
        errors.append(f"{url}/executions: not an executions page")
    raise FeedUnreadable("; ".join(errors) or "no member has an HTTP address")


def latest_seq(ctx: StepContext, view: ClusterView) -> int:
    return int(_first_answer(ctx, view, {"after": BEYOND_ANY_SEQ, "limit": 1})["latestSeq"])


def read_after(
    ctx: StepContext, view: ClusterView, after: int, up_to: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The records after seq `after` (up to seq `up_to`), and whether some had already
    left the node's bounded feed window (a gap: the counts are then a lower bound)."""
    records: list[dict[str, Any]] = []
    gap = False
    while True:
        page = _first_answer(ctx, view, {"after": after, "limit": PAGE})
        gap = gap or bool(page.get("gap"))
        got = [r for r in page["executions"] if up_to is None or r["seq"] <= up_to]
        records += got
        if len(got) < len(page["executions"]) or len(page["executions"]) < PAGE:
            return records, gap
        after = int(page["nextAfter"])


def measure_baseline(ctx: StepContext, view: ClusterView) -> dict[str, Any]:
    """The cluster's executions that finished in the BASELINE_WINDOW_S before now."""
    latest = latest_seq(ctx, view)
    since = time.time() - BASELINE_WINDOW_S
    records, _gap = read_after(ctx, view, max(0, latest - BASELINE_MAX_RECORDS), latest)
    tally = Tally()
    for record in records:
        if float(record.get("finishedAtEpoch") or 0.0) >= since:
            tally.add(record)
    return {
        "executions": tally.executions,
        "failed": tally.failed,
        "errorRatio": tally.error_ratio,
        "p95Ms": tally.p95_ms,
        "windowS": BASELINE_WINDOW_S,
        "seq": latest,
        "at": round(since + BASELINE_WINDOW_S, 3),
    }


class SoakWindow:
    """The executions committed since the soak's first check; `refresh` reads what is
    new. Both soak gates share one window, so each round reads the feed about once."""

    def __init__(self) -> None:
        self.after: int | None = None
        self.started = 0.0
        self.tally = Tally()
        self.gap = False

    def refresh(self, ctx: StepContext, view: ClusterView) -> None:
        if self.after is None:
            self.after, self.started = latest_seq(ctx, view), time.monotonic()
            return
        records, gap = read_after(ctx, view, self.after)
        self.gap = self.gap or gap
        for record in records:
            self.tally.add(record)
        if records:
            self.after = int(records[-1]["seq"])

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started if self.after is not None else 0.0
