"""Keeping a node in step: how far behind the leader it is, judged over time (readiness),
the replication lag it reports, the keep-alives that keep peer links fresh, and the
work handed to the tick thread.

A follower always trails the leader by the entries in flight, so "behind right
now" says nothing. What matters is whether it applies, within a bound, what the
leader had committed: a node that has not applied the leader's commit index of
``bound_s`` ago is stuck (issue 12: an old leader sat 1,800 entries behind,
reporting ready, for good) and must not take traffic.
"""

from __future__ import annotations

import concurrent.futures
import queue
from collections import deque
from collections.abc import Callable
from typing import Any

from pysyncobj.monotonic import monotonic as pysyncobj_clock

CATCH_UP_BOUND_S = 5.0


class CatchUpWatch:
    """Fed on the tick thread with (time, leader's commit index, applied index);
    read from anywhere (a tuple swap is atomic)."""

    def __init__(self, bound_s: float = CATCH_UP_BOUND_S) -> None:
        self.bound_s = bound_s
        # (time, leader commit index), appended when the leader's index rises.
        self._samples: deque[tuple[float, int]] = deque()
        self._verdict: tuple[bool, float] = (True, 0.0)  # (caught up, behind since)

    def observe(self, now: float, leader_commit: int | None, applied: int) -> None:
        samples = self._samples
        if leader_commit is not None and (not samples or leader_commit > samples[-1][1]):
            samples.append((now, leader_commit))
        # Keep one sample at least bound_s old: the reference to judge against.
        while len(samples) > 1 and samples[1][0] <= now - self.bound_s:
            samples.popleft()
        reference = samples[0] if samples and samples[0][0] <= now - self.bound_s else None
        if reference is None or applied >= reference[1]:
            self._verdict = (True, 0.0)
        elif self._verdict[0]:
            self._verdict = (False, reference[0])

    @property
    def caught_up(self) -> bool:
        return self._verdict[0]

    def behind_for_s(self, now: float) -> float:
        caught_up, since = self._verdict
        return 0.0 if caught_up else now - since


def replication_progress(
    match: dict[Any, int], last: int, samples: list[tuple[float, int]], now: float
) -> dict[str, dict[str, float | None]]:
    """Per follower {matchIndex, lagEntries, lagMs} from the leader's matchIndex table,
    its last log index and (monotonic time, last index) samples of when its log grew:
    a follower at matchIndex m lags by the age of the first sample past m."""
    progress: dict[str, dict[str, float | None]] = {}
    for node, idx in match.items():
        if not hasattr(node, "address"):
            continue  # a read-only observer (no address): not a member, no lag to report
        if idx == 0:
            # A new leader knows nothing of this follower until its first
            # append-entries answer: unknown, not "behind since forever".
            progress[node.address] = {"matchIndex": None, "lagEntries": None, "lagMs": None}
            continue
        behind = max(0, last - idx)
        lag_ms = 0.0
        if behind:
            appended_at = next((t for t, i in samples if i > idx), None)
            lag_ms = (now - appended_at) * 1000 if appended_at is not None else 0.0
        progress[node.address] = {
            "matchIndex": idx,
            "lagEntries": behind,
            "lagMs": round(lag_ms, 3),
        }
    return progress


def send_keepalives(obj: Any, quiet_s: float) -> list[Any]:
    """pysyncobj drops a connection on the first *send* after `connectionTimeout`
    without reads, and followers never talk to each other between elections: so the
    first vote request after a quiet spell was always lost, and the election waited a
    whole timeout for a reconnect. A message of an unknown type (pysyncobj ignores it),
    sent each second to every connected peer this node sent nothing else to for
    `quiet_s`, keeps every link read-fresh. A leader's heartbeats and a follower's
    answers to them already do, so only links between followers carry keep-alives.
    Returns the peers it went to."""
    transport = obj._SyncObj__transport
    now = pysyncobj_clock()
    sent = []
    for node in list(obj._SyncObj__otherNodes):
        if not obj.isNodeConnected(node):
            continue
        connection = transport._connections.get(node)
        if now - getattr(connection, "sent_at", float("-inf")) < quiet_s:
            continue
        transport.send(node, {"type": "keepalive"})
        sent.append(node)
    return sent


class TickJobs:
    """Work handed to the tick thread, run there between two applied entries."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()

    def put(self, job: Callable[[int, int], Any]) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((job, future))
        return future

    def run(self, applied_index: int, term: int) -> None:
        while True:
            try:
                job, future = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(job(applied_index, term))
            except Exception as exc:  # the tick thread must survive a failing job
                future.set_exception(exc)
