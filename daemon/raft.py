"""pysyncobj, driven safely: one place that knows its internals.

Everything that reaches into pysyncobj's private attributes lives here and in
its ``raft_*.py`` siblings, pinned to pysyncobj 0.3.17 (see constraints.txt):
``raft_protocol.py`` corrects its log replication (issue 12: a partitioned leader
never caught up), ``raft_election.py`` adds CheckQuorum and PreVote,
``raft_liveness.py`` judges whether this node keeps up with the leader, and
``raft_storage.py`` shrinks the journal. The rest of the daemon sees a small
surface: ``submit`` (an awaitable, retried, idempotent write), ``status``,
per-follower lag, compaction that really frees disk, membership and leadership
transfer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pysyncobj import FAIL_REASON, SyncObjConf
from pysyncobj.monotonic import monotonic as pysyncobj_clock

from daemon import raft_disk, raft_transport
from daemon import raft_storage as storage
from daemon.config import Config
from daemon.raft_election import LeaderLossWatch
from daemon.raft_liveness import CatchUpWatch, TickJobs, replication_progress, send_keepalives
from daemon.raft_protocol import SafeSyncObj, keep_code_version_map
from daemon.state import ReplicatedState

log = logging.getLogger("daemon.raft")

ROLE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}
RETRYABLE = {
    FAIL_REASON.QUEUE_FULL,
    FAIL_REASON.MISSING_LEADER,
    FAIL_REASON.DISCARDED,
    FAIL_REASON.NOT_LEADER,
    FAIL_REASON.LEADER_CHANGED,
}
KEEPALIVE_EVERY_S = 1.0  # well inside pysyncobj's connectionTimeout (>= 3.5 s)


class NotCommitted(Exception):
    """A write was not confirmed in time. It may still commit: retry with the same id."""


@dataclass(frozen=True)
class AppliedView:
    """(applied index, digest) read together on the tick thread, so they match."""

    applied_index: int
    commit_index: int
    last_log_index: int
    term: int
    digest: str
    changes: int


def tick_cap_s(batch: bool, heartbeat_s: float) -> float:
    """The longest the tick thread sleeps. Messages, commands and the timers it knows
    wake it sooner (raft_wakeups.py), so a heartbeat interval is enough; batched
    appends go out only on a tick, so with batching on it stays at 10 ms."""
    return 0.01 if batch else min(0.1, max(0.01, heartbeat_s))


def build_conf(config: Config, on_state_changed: Callable[[int, int], None]) -> SyncObjConf:
    raft = config.raft
    heartbeat_s = raft.heartbeat_interval_ms / 1000
    election_s = raft.election_timeout_ms / 1000
    return SyncObjConf(
        password=raft.password,
        bindAddress=config.raft_bind,
        journalFile=str(config.journal_file),
        fullDumpFile=str(config.dump_file),
        appendEntriesPeriod=heartbeat_s,
        appendEntriesUseBatch=raft.append_entries_batch,
        raftMinTimeout=election_s,
        raftMaxTimeout=election_s * 1.5,
        # Must be >= raftMaxTimeout (pysyncobj asserts it).
        connectionTimeout=max(3.5, election_s * 1.5),
        connectionRetryTime=min(1.0, election_s),
        logCompactionMinEntries=raft.snapshot_interval_ops,
        logCompactionMinTime=raft.snapshot_interval_s,
        dynamicMembershipChange=True,
        commandsQueueSize=100_000,
        autoTickPeriod=tick_cap_s(raft.append_entries_batch, heartbeat_s),
        onStateChanged=on_state_changed,
    )


class RaftNode:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.state = ReplicatedState()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._role_listeners: list[Callable[[int], None]] = []
        # (monotonic time, last log index) whenever the leader's log grew: lag in ms
        # for a follower at matchIndex m is the age of the first sample past m.
        self._append_samples: deque[tuple[float, int]] = deque(maxlen=20_000)
        self._view = AppliedView(0, 0, 0, 0, self.state.digest, 0)
        self._leader_loss = LeaderLossWatch(config.raft, config.raft_advertise)
        self._last_keepalive = 0.0
        self._slack_checked_at = 0.0
        self._shrink_requested = threading.Event()
        self._shrink_done = threading.Event()
        self.catch_up = CatchUpWatch()
        self._version_map: Any = None  # see keep_code_version_map
        self._tick_jobs = TickJobs()
        peers = [p.raft_address for p in config.peers]
        raft_transport.install()  # bound unauthenticated Raft connections (issue 14)
        self.obj = SafeSyncObj(
            config.raft_advertise,
            peers,
            conf=build_conf(config, self._on_state_changed),
            consumers=[self.state],
        )
        self.disk = raft_disk.DiskGuard(config.data_dir)
        self.disk.install(self.obj._SyncObj__raftLog)
        self.obj.disk_guard = self.disk
        self.obj.addOnTickCallback(self._on_tick)
        self.obj.timed_poll.add(self._next_timer)

    # ---- lifecycle -------------------------------------------------------
    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def on_role_change(self, listener: Callable[[int], None]) -> None:
        self._role_listeners.append(listener)

    def destroy(self) -> None:
        self.obj.destroy()

    def _on_state_changed(self, old: int, new: int) -> None:
        # Runs on the tick thread: hand off, never block here.
        if new == 2:
            # Samples from before this term describe another leader's log.
            self._append_samples.clear()
        if self._loop is not None:
            for listener in self._role_listeners:
                self._loop.call_soon_threadsafe(listener, new)

    # ---- tick thread -----------------------------------------------------
    def _on_tick(self) -> None:
        self._tick_jobs.run(self.obj.raftLastApplied, self.obj.raftCurrentTerm)
        obj = self.obj
        last = obj._SyncObj__getCurrentLogIndex()
        if not self._append_samples or self._append_samples[-1][1] != last:
            self._append_samples.append((time.monotonic(), last))
        digest, changes = self.state.digest, self.state.changes
        view_applied = obj.raftLastApplied
        self._view = AppliedView(
            applied_index=view_applied,
            commit_index=obj.raftCommitIndex,
            last_log_index=last,
            term=obj.raftCurrentTerm,
            digest=digest,
            changes=changes,
        )
        self.catch_up.observe(time.monotonic(), obj._SyncObj__leaderCommitIndex, view_applied)
        self._leader_loss.observe(obj, self.member_addresses)
        raft_disk.enforce(obj, self.disk, self.config.raft.election_timeout_ms / 1000)
        self._keep_peer_connections_fresh()
        self._version_map = keep_code_version_map(obj, self._version_map)
        journal = obj._SyncObj__raftLog
        now = time.monotonic()
        if self._shrink_requested.is_set() or (
            # journal_slack costs an fstat: once a second is soon enough for disk space.
            now - self._slack_checked_at >= 1.0
            and storage.journal_slack(journal) > storage.SHRINK_MIN_BYTES
        ):
            self._shrink_requested.clear()
            storage.shrink_journal(journal)
            self._shrink_done.set()
        if now - self._slack_checked_at >= 1.0:
            self._slack_checked_at = now

    def on_tick_thread(self, job: Callable[[int, int], Any]) -> concurrent.futures.Future:
        """Run job(applied index, term) once on the tick thread, between two applied
        entries: there the index, the term and the state agree (a backup's cut)."""
        future = self._tick_jobs.put(job)
        self._wake_tick_thread()
        return future

    def _wake_tick_thread(self) -> None:
        """The tick thread may sleep until its next timer (raft_wakeups.py): work handed
        to it from another thread wakes it through pysyncobj's command pipe."""
        notifier = getattr(self.obj, "_SyncObj__pipeNotifier", None)
        if notifier is not None:
            notifier.notify()

    def _next_timer(self) -> float | None:
        """When this node's own tick work is next due (pysyncobj's clock), for the
        tick thread's sleep (raft_wakeups.py): keep-alives, and on a follower the
        moment a lost or silent leader makes it hasten its election."""
        due = self._last_keepalive + KEEPALIVE_EVERY_S
        election_due = self._leader_loss.due(self.obj)
        return due if election_due is None else min(due, election_due)

    def _keep_peer_connections_fresh(self) -> None:
        now = pysyncobj_clock()
        if now - self._last_keepalive >= KEEPALIVE_EVERY_S:
            self._last_keepalive = now
            send_keepalives(self.obj, KEEPALIVE_EVERY_S)

    # ---- reads -----------------------------------------------------------
    @property
    def view(self) -> AppliedView:
        return self._view

    @property
    def role(self) -> str:
        return ROLE_NAMES.get(self.obj._SyncObj__raftState, "follower")

    @property
    def is_leader(self) -> bool:
        return self.obj._isLeader()

    @property
    def has_quorum(self) -> bool:
        return bool(self.obj.hasQuorum) and self.leader_address() is not None

    def is_ready(self) -> bool:
        return self.obj.isReady()

    def not_ready_reason(self) -> str:
        """One line on why pysyncobj does not call this node ready yet: it is ready once
        it has applied everything the leader said was committed, so this names both
        indexes, the leader, and which peers it is connected to."""
        obj = self.obj
        transport = obj._SyncObj__transport
        peers = ", ".join(
            f"{n.address} {'connected' if obj.isNodeConnected(n) else 'not connected'}"
            for n in obj._SyncObj__otherNodes
        )
        return (
            f"transport {'ready' if transport.ready else 'not ready'}, "
            f"{self.role}, term {obj.raftCurrentTerm}, leader {self.leader_address()}, "
            f"applied {obj.raftLastApplied}, commit {obj.raftCommitIndex}, "
            f"leader's commit {obj._SyncObj__leaderCommitIndex}, "
            f"log {obj._SyncObj__raftLog[0][1]}..{obj._SyncObj__raftLog[-1][1]}, "
            f"snapshot loading {obj._SyncObj__needLoadDumpFile}, peers: {peers or 'none'}"
        )

    def is_caught_up(self) -> bool:
        """False while this node has not applied what the leader had committed
        CATCH_UP_BOUND_S ago (raft_liveness.py): it must not report ready."""
        return self.catch_up.caught_up

    def leader_address(self) -> str | None:
        leader = self.obj._getLeader()
        return None if leader is None else leader.address

    def member_addresses(self) -> list[str]:
        others = [n.address for n in self.obj._SyncObj__otherNodes]
        return sorted([self.config.raft_advertise, *others])

    def follower_progress(self) -> dict[str, dict[str, float | None]]:
        """On the leader: {raft address: {matchIndex, lagEntries, lagMs}}; empty elsewhere."""
        if not self.is_leader:
            return {}
        return replication_progress(
            dict(self.obj._SyncObj__raftMatchIndex),
            self._view.last_log_index,
            list(self._append_samples),
            time.monotonic(),
        )

    def journal_bytes(self) -> int:
        return storage.file_bytes(self.config.journal_file)

    def disk_usage(self) -> dict[str, float]:
        return {**storage.disk_usage(self.config.data_dir), **self.disk.report()}

    def data_dir_bytes(self) -> int:
        return storage.data_dir_bytes(self.config.data_dir)

    @property
    def divergences(self) -> int:
        """Applied entries the leader replaced (raft_protocol.py): must stay 0."""
        return self.obj.divergent_truncations

    # ---- writes ----------------------------------------------------------
    async def submit(
        self,
        method: Callable[..., Any],
        *args: Any,
        confirmed: Callable[[], bool],
        timeout_s: float | None = None,
    ) -> None:
        """Submit a replicated call and wait until this node has applied it.

        ``confirmed`` reads the local state to tell whether the write landed; it
        is the source of truth, because a callback can be lost (a follower that
        installs a snapshot drops them) and a timeout may hide a commit. The
        write is resubmitted on retryable failures; its own id makes that safe.
        """
        loop = asyncio.get_running_loop()
        election_s = self.config.raft.election_timeout_ms / 1000
        deadline = loop.time() + (timeout_s if timeout_s is not None else 3 * election_s + 2)
        while True:
            if confirmed():
                return
            if self.obj.isolated:
                # CheckQuorum stepped this node down: no majority will answer soon.
                raise NotCommitted("this node cannot reach a majority; the write may still commit")
            future: asyncio.Future = loop.create_future()

            def done(result: Any, error: int, future: asyncio.Future = future) -> None:
                if not future.done():
                    loop.call_soon_threadsafe(_resolve, future, error)

            method(*args, callback=done)
            # A callback can be lost outright (a follower whose leader died may never
            # answer), so stop waiting for it after an election timeout and resubmit.
            error = await self._wait(future, confirmed, min(deadline, loop.time() + election_s))
            if error == FAIL_REASON.SUCCESS or confirmed():
                return
            if error is not None and error not in RETRYABLE:
                raise NotCommitted(f"raft refused the write (reason {error})")
            if loop.time() >= deadline:
                raise NotCommitted("write not confirmed before the deadline; it may still commit")
            await asyncio.sleep(0.02)

    async def _wait(
        self, future: asyncio.Future, confirmed: Callable[[], bool], deadline: float
    ) -> int | None:
        loop = asyncio.get_running_loop()
        slice_s = 0.01
        while loop.time() < deadline and not self.obj.isolated:
            try:
                return await asyncio.wait_for(
                    asyncio.shield(future), min(slice_s, deadline - loop.time())
                )
            except TimeoutError:
                if confirmed():
                    return FAIL_REASON.SUCCESS
                # confirmed() is a dict lookup: checking often costs little and
                # answers soon after a commit whose callback went missing.
                slice_s = min(slice_s * 2, 0.1)
        return None

    async def compact(self, timeout_s: float = 30.0) -> bool:
        """Force a snapshot, wait for pysyncobj to write it and drop the entries
        it covers, then truncate the journal file. True if a snapshot now covers
        everything applied before the call."""
        obj = self.obj
        before = obj._SyncObj__lastSerializedEntry
        target = obj.raftLastApplied - 1
        obj.forceLogCompaction()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        compacted = False
        while loop.time() < deadline:
            latest = obj._SyncObj__lastSerializedEntry
            if latest != before or (latest is not None and latest >= target):
                compacted = True
                break
            await asyncio.sleep(0.02)
        self._shrink_done.clear()
        self._shrink_requested.set()
        self._wake_tick_thread()
        while loop.time() < deadline and not self._shrink_done.is_set():
            await asyncio.sleep(0.01)
        return compacted

    # ---- membership and leadership ----------------------------------------
    async def _utility(self, call: Callable[..., None], *args: Any, timeout_s: float = 10) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def done(result: Any, error: int) -> None:
            loop.call_soon_threadsafe(_resolve, future, error)

        call(*args, callback=done)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return -1

    async def add_member(self, address: str) -> int:
        return await self._utility(self.obj.addNodeToCluster, address)

    async def remove_member(self, address: str) -> int:
        return await self._utility(self.obj.removeNodeFromCluster, address)

    async def transfer_leadership(self, address: str | None) -> int:
        return await self._utility(self.obj.transferLeadership, address)

    # ---- code version ------------------------------------------------------
    def code_version(self) -> int:
        """The state-machine code version the cluster has enabled (a replicated entry)."""
        return int(self.obj.getCodeVersion())

    async def set_code_version(self, version: int, timeout_s: float = 10) -> int:
        """Commit a switch to `version` (0 on success, else a FAIL_REASON; -1 on timeout).

        pysyncobj raises at once if this build's own methods stop below `version` or the
        enabled one is already above it; the caller checks both first, so that raise
        only happens in a race, and it becomes a refusal, not a 500."""
        try:
            return await self._utility(self.obj.setCodeVersion, version, timeout_s=timeout_s)
        except Exception:  # pysyncobj raises a bare Exception for a wrong version
            log.warning("setCodeVersion(%d) refused by pysyncobj", version, exc_info=True)
            return -2


def _resolve(future: asyncio.Future, error: int) -> None:
    if not future.done():
        future.set_result(error)
