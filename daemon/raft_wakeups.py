"""When pysyncobj's tick thread must wake next, so an idle node sleeps until then.

pysyncobj's tick thread runs its whole tick, then polls its sockets for at most
``autoTickPeriod`` (10 ms here): an idle node woke 100 times a second to find nothing
to do, about half of its idle CPU (BENCHMARKS, "Where idle CPU goes"). Messages and
commands already end the poll at once (a socket or pysyncobj's command pipe becomes
readable), so only *timers* need the periodic wake-up. This module bounds the poll by
the earliest timer that is due instead: the heartbeat on a leader, the election
deadline and the pre-vote retry on a follower, the end of a transfer hold, and the
daemon's own (``RaftNode`` registers them: hastened elections, keep-alives). Timers
nobody registers (CheckQuorum's window, pysyncobj's once-a-second journal flush and
reconnects, the disk and catch-up checks) are judged at least every
``autoTickPeriod``, now a heartbeat interval, which their tolerances allow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pysyncobj.monotonic import monotonic as clock

LEADER = 2
# A timer already past was due in the tick that just ran, and it did not fire because
# a condition is unmet (a follower connected to no one cannot ask for votes): waking
# for it again at once would spin the thread, so only future timers shorten the wait.
MIN_WAIT_S = 0.0005

Deadline = Callable[[], float | None]


def pysyncobj_deadlines(obj: Any) -> list[float]:
    """Times (pysyncobj's clock) at which obj's own tick has work to do; past ones
    included (the caller drops them)."""
    if obj._SyncObj__raftState == LEADER:
        due = [obj._SyncObj__newAppendEntriesTime, obj._transfer_hold_until]
        if (
            not obj._SyncObj__otherNodes
            and obj.raftCommitIndex < obj._SyncObj__getCurrentLogIndex()
        ):
            # Alone, no answer will wake it: its next tick commits what it just appended.
            due.append(clock() + MIN_WAIT_S)
        return due
    # Past its election deadline a follower asks for pre-votes, again after a delay.
    return [obj._SyncObj__raftElectionDeadline, obj._prevote_sent_at + obj._prevote_retry_s]


class TimedPoll:
    """Replaces ``obj._poller.poll``: the caller's timeout becomes a cap."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.deadlines: list[Deadline] = []
        self._poll = obj._poller.poll
        obj._poller.poll = self.poll

    def add(self, deadline: Deadline) -> None:
        """deadline() -> the next time (pysyncobj's clock) it needs a tick, or None."""
        self.deadlines.append(deadline)

    def wait_s(self, cap_s: float, now: float) -> float:
        due = pysyncobj_deadlines(self.obj)
        for deadline in self.deadlines:
            at = deadline()
            if at is not None:
                due.append(at)
        ahead = [at - now for at in due if at > now]
        return max(MIN_WAIT_S, min([cap_s, *ahead]))

    def poll(self, timeout: float) -> None:
        # A tick that must not wait (timeout 0) keeps its 0.
        self._poll(self.wait_s(timeout, clock()) if timeout > 0 else timeout)
