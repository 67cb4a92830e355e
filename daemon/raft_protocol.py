"""pysyncobj 0.3.17's Raft message handling, corrected where it is wrong.

`SafeSyncObj` subclasses pysyncobj's SyncObj and overrides name-mangled private
methods (``_SyncObj__onMessageReceived``, ``_SyncObj__sendNextNodeIdx``):
pysyncobj calls them as ``self.__name``, which resolves through the subclass.
Only ``daemon/raft*.py`` may reach into pysyncobj internals.

Why a partitioned leader never caught up (issue 12, reproduced by
``tests/chaos/leader_partition.py`` with ``DAEMON_RAFT_TRACE=1``):

* The new leader pipelines its log to a follower in 64 KiB batches, several per
  cycle, each advancing ``nextIndex`` before any answer arrives.
* The old leader holds entries from its isolated term. It answers the first batch
  (whose ``prevLogIdx`` it holds with another term) "step back to prevLogIdx", and
  every later batch (whose ``prevLogIdx`` lies past its log) "start at my last
  index + 1".
* The leader applied those answers in order, so the last one won: nextIndex went
  back to last + 1 every cycle (trace: ``hint 160, nextIndex 505 -> 160``, then
  ``hint 161, nextIndex 160 -> 161``), never below the conflict. The follower
  stayed at its old commit index forever while reporting ready.

The fix, on both sides (so a mixed-version cluster heals too):

* Leader: a rejection only ever lowers ``nextIndex`` (``min(nextIndex, hint)``);
  an earlier answer's step back is no longer undone by a later one's.
* Follower: a rejection's hint is never above ``max(commitIndex, lastApplied) + 1``.
  Entries up to there are committed, so the leader holds them too (Raft's leader
  completeness), or a snapshot of them: the next append from there matches in one
  round trip, instead of stepping back one entry per cycle.

And one more correction on the follower: pysyncobj truncated its log after
``prevLogIdx`` on *every* append, even when the entries were the ones it already
held (a re-sent batch). That logged CRITICAL "truncating already-applied log
entries" after restarts and leader changes with nothing wrong, and could drop
entries the follower had already acknowledged. Now the follower skips entries
it holds with the same term and truncates only from a real conflict; truncating
an applied entry is then a real divergence, logged loud (see
``divergent_truncations``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pysyncobj import SyncObj

from daemon import raft_disk
from daemon.raft_election import ElectionSafety

log = logging.getLogger("daemon.raft")
trace = logging.getLogger("daemon.raft.trace")
if os.environ.get("DAEMON_RAFT_TRACE"):
    # Off by default: one line per rejected append, for the chaos scenarios.
    trace.setLevel(logging.DEBUG)

LEADER = 2
# Off only to measure what coalescing saves (bench/raft_sends.py); never in service.
COALESCE_APPENDS = os.environ.get("DAEMON_RAFT_COALESCE_APPENDS", "1") != "0"


# Attributes the daemon adds to the SyncObj after pysyncobj's __init__. pysyncobj puts
# every instance attribute it did not see at the end of __init__ into its snapshots, and
# writes them all back when it loads one: the tick thread's timed poll (raft_wakeups.py)
# made every snapshot fail to pickle, and a loaded snapshot replaced the live disk guard
# with the copy frozen in it. Runtime machinery is kept out of both.
RUNTIME_ATTRIBUTES = frozenset(
    {"timed_poll", "disk_guard", "divergent_truncations", "_coalescing", "_append_owed"}
)


class SafeSyncObj(ElectionSafety):
    divergent_truncations = 0  # applied entries replaced by the leader: must stay 0
    _coalescing = False
    _append_owed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._SyncObj__properies.update(RUNTIME_ATTRIBUTES)

    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None:
        live = {k: v for k, v in self.__dict__.items() if k in RUNTIME_ATTRIBUTES}
        super()._SyncObj__loadDumpFile(clearJournal)
        # A snapshot written by an earlier build may carry them: the live ones win.
        for name in RUNTIME_ATTRIBUTES - live.keys():
            self.__dict__.pop(name, None)
        self.__dict__.update(live)
        # A snapshot holds only committed entries, so its index is committed. pysyncobj
        # keeps the commit index the journal's meta file held, which it saves once a
        # second: after a stop it can lie below the snapshot, and below the log's first
        # entry (see _SyncObj__sendNextNodeIdx for what that did).
        applied = self._SyncObj__raftLastApplied
        if self._SyncObj__raftCommitIndex < applied:
            self._SyncObj__raftCommitIndex = applied
            self._SyncObj__raftLog.setRaftCommitIndex(applied)

    def _SyncObj__onMessageReceived(self, node: Any, message: dict) -> None:
        kind = message.get("type")
        if kind == "append_entries" and "prevLogIdx" in message:
            message = self._skip_entries_already_held(message)
        if kind == "append_entries":
            full = raft_disk.while_full(self, message)  # a full disk takes no entries
            if full is None:
                return
            message = full
        elif kind == "next_node_idx" and message.get("reset"):
            self._on_rejection(node, message)
            return
        super()._SyncObj__onMessageReceived(node, message)

    # ---- leader side ------------------------------------------------------
    def _checkCommandsToApply(self) -> None:
        """One append to each follower per drain of the command queue, not one per command.

        With batching off (for latency), pysyncobj sends every follower an append after
        each command it takes from the queue: under load that is ten or more messages
        per follower per tick, each encrypted and written with its own syscall, the
        largest single cost on a busy leader (BENCHMARKS, issue 16). The entries go out
        at the end of the same drain, microseconds later, in one message per follower."""
        if not COALESCE_APPENDS:
            super()._checkCommandsToApply()
            return
        self._coalescing = True
        try:
            super()._checkCommandsToApply()
        finally:
            self._coalescing = False
        if self._append_owed:
            self._append_owed = False
            if self._SyncObj__raftState == LEADER:
                self._SyncObj__sendAppendEntries()

    def _SyncObj__sendAppendEntries(self) -> None:
        if self._coalescing:
            self._append_owed = True
            return
        super()._SyncObj__sendAppendEntries()

    def _on_rejection(self, node: Any, message: dict) -> None:
        next_index = self._SyncObj__raftNextIndex
        before = next_index.get(node)
        super()._SyncObj__onMessageReceived(node, message)
        if self._SyncObj__raftState != LEADER or before is None or node not in next_index:
            return
        # pysyncobj set nextIndex to the hint; a later (higher) hint must not undo
        # an earlier step back, so keep the lower of the two.
        next_index[node] = min(before, next_index[node])
        trace.debug(
            "leader: %s rejected, hint %s, nextIndex %s -> %s",
            getattr(node, "address", node),
            message.get("next_node_idx"),
            before,
            next_index[node],
        )

    # ---- follower side ----------------------------------------------------
    def _SyncObj__sendNextNodeIdx(
        self,
        node: Any,
        reset: bool = False,
        nextNodeIdx: int | None = None,
        success: bool = False,
    ) -> None:
        if reset and not success:
            # A rejection: "start at my commit index + 1" at the latest (see above). Not
            # below what this node applied: entries up to a loaded snapshot are no longer
            # in its log, so a hint below them asks for an append it can never match
            # (a restarted follower whose saved commit index lagged its snapshot was
            # rejected, and never ready, for as long as the leader held those entries).
            hint = nextNodeIdx if nextNodeIdx is not None else self._last_index() + 1
            held_from = max(self._SyncObj__raftCommitIndex, self._SyncObj__raftLastApplied)
            nextNodeIdx = min(hint, held_from + 1)
        super()._SyncObj__sendNextNodeIdx(node, reset, nextNodeIdx, success)

    def _last_index(self) -> int:
        return self._SyncObj__raftLog[-1][1]

    def _term_at(self, index: int) -> int | None:
        entries = self._SyncObj__getEntries(index, 1)
        return entries[0][2] if entries else None

    def _skip_entries_already_held(self, message: dict) -> dict:
        """Rewrite an append so pysyncobj truncates only from the first conflict.

        pysyncobj deletes everything after ``prevLogIdx`` before appending. Raft
        says: skip entries already held with the same term, truncate from the
        first that differs, and keep the rest when nothing differs."""
        if message.get("transmission") is not None or message["term"] < self.raftCurrentTerm:
            return message
        prev_idx, prev_term = message["prevLogIdx"], message["prevLogTerm"]
        if prev_idx is None or self._term_at(prev_idx) != prev_term:
            return message  # pysyncobj rejects it; nothing to skip
        sent = message.get("entries") or []
        last = self._last_index()
        held = 0
        while (
            held < len(sent)
            and sent[held][1] <= last
            and self._term_at(sent[held][1]) == sent[held][2]
        ):
            prev_idx, prev_term = sent[held][1], sent[held][2]
            held += 1
        entries = sent[held:]
        if not entries and last > prev_idx:
            # Everything sent is already here, and more. Entries of the leader's
            # own term came from this leader, so they match its log: keep them
            # all. Older ones past the commit index may not match: pysyncobj
            # drops those. Committed ones do match (leader completeness): keep.
            keep_to = last if self._term_at(last) == message["term"] else None
            if keep_to is None:
                keep_to = max(prev_idx, min(last, self._SyncObj__raftCommitIndex))
            prev_idx, prev_term = keep_to, self._term_at(keep_to)
        elif entries and entries[0][1] <= self.raftLastApplied:
            # A real conflict below the applied index: the state machine already
            # ran an entry the leader replaces. Raft forbids this; say so loudly.
            self.divergent_truncations += 1
            log.critical(
                "the leader replaces applied entry %d (term %s here, %s on the leader): "
                "this node's state may have diverged; rebuild it from a snapshot",
                entries[0][1],
                self._term_at(entries[0][1]),
                entries[0][2],
            )
        if prev_idx == message["prevLogIdx"]:
            return message  # nothing held twice: pysyncobj's own path is right
        return {**message, "prevLogIdx": prev_idx, "prevLogTerm": prev_term, "entries": entries}


def keep_code_version_map(obj: SyncObj, fixed: Any) -> Any:
    """Keep pysyncobj's method map at the enabled code version; returns the map to pass
    back next time.

    pysyncobj sends each replicated call as the `<name>_v<ver>` body of the enabled code
    version. After loading a snapshot (at start, or one the leader sent) it rebuilds
    that map for version 0 whatever version is enabled, so on that node a method added
    at ver=1 fails (KeyError) even though the cluster switched long ago. Called on the
    tick thread, right after pysyncobj's own work in the same tick."""
    names = obj._SyncObj__currentVersionFuncNames
    if names is fixed:
        return fixed
    enabled = obj.getCodeVersion()
    if enabled:
        obj._SyncObj__onSetCodeVersion(enabled)
    return obj._SyncObj__currentVersionFuncNames
