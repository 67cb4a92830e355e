"""A full disk refuses writes instead of killing the node (issue 12).

pysyncobj's journal is a memory-mapped file that it grows with ``mmap.resize``
(an ``ftruncate``): the new pages are holes, and the first store into a hole on
a full filesystem raises SIGBUS, which kills the process. Two measures:

* Every growth of the journal is allocated for real (``posix_fallocate``) before
  the mapping is written, in steps of at most ``GROW_STEP_MAX`` bytes, so a store
  into the mapping never meets a hole. If allocation fails anyway the tick
  thread waits for space (the node looks paused to its peers, which Raft
  tolerates) rather than crash.
* A guard watches the data filesystem's free bytes and keeps ``reserve_bytes``
  of headroom: below it the node is *full*. It also keeps a *ballast* file of
  ``ballast_bytes`` allocated in the data dir while space allows, and deletes it
  the moment the disk is full: whatever filled the disk, the appends already in
  flight (and the metadata pysyncobj rewrites) then find room. A full node refuses client writes
  (507), drops log entries a leader sends it (the leader resends them once space
  is back), hands leadership away and does not stand for election. Reads and
  health keep working; when space is freed past the reserve, the ballast and a
  hysteresis margin, the node rebuilds its ballast, takes writes and entries
  again and catches up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("daemon.raft")

GROW_STEP_MAX = 1 << 20
RESERVE_BYTES = int(os.environ.get("DAEMON_DISK_RESERVE_BYTES", 8 << 20))
BALLAST_BYTES = int(os.environ.get("DAEMON_DISK_BALLAST_BYTES", 4 << 20))
BALLAST_NAME = "disk-ballast"
HYSTERESIS_BYTES = 1 << 20
CHECK_EVERY_S = 0.2
STEP_DOWN_AFTER_S = 1.0

FOLLOWER, LEADER = 0, 2


def free_bytes(path: Path | str) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class DiskGuard:
    """Owned by the RaftNode; ``refresh`` runs on the tick thread, ``full`` is read anywhere."""

    def __init__(
        self,
        data_dir: Path | str,
        reserve_bytes: int = RESERVE_BYTES,
        ballast_bytes: int = BALLAST_BYTES,
    ) -> None:
        self.data_dir = data_dir
        self.reserve_bytes = reserve_bytes
        self.ballast_bytes = ballast_bytes
        self.ballast = Path(data_dir) / BALLAST_NAME
        self.full = False
        self.free: int | None = None
        self._checked_at = 0.0
        self.full_since: float | None = None  # pysyncobj clock; tick thread only
        self.transfer_at = 0.0

    def refresh(self, now: float | None = None, force: bool = False) -> bool:
        now = time.monotonic() if now is None else now
        if not force and now - self._checked_at < CHECK_EVERY_S:
            return self.full
        self._checked_at = now
        free = free_bytes(self.data_dir)
        self.free = free
        if free is None:
            return self.full
        if not self.full and free < self.reserve_bytes:
            log.error(
                "disk full: %d bytes free under the %d-byte reserve; refusing writes",
                free,
                self.reserve_bytes,
            )
            self._release_ballast()
        elif self.full and free >= self.reserve_bytes + self.ballast_bytes + HYSTERESIS_BYTES:
            log.warning("disk space is back (%d bytes free); taking writes again", free)
            self.full = False
        if not self.full:
            self._keep_ballast()
        return self.full

    def _release_ballast(self) -> bool:
        """Mark the disk full and give the ballast's space to the appends already in
        flight; True if there was a ballast to give."""
        self.full = True
        try:
            self.ballast.unlink()
        except OSError:
            return False
        return True

    def _keep_ballast(self) -> None:
        try:
            if self.ballast.exists() and self.ballast.stat().st_size >= self.ballast_bytes:
                return
            fd = os.open(self.ballast, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, self.ballast_bytes)
        except OSError:
            # Not enough room for the ballast: keep none rather than a partial one.
            with contextlib.suppress(OSError):
                self.ballast.unlink()
        finally:
            os.close(fd)

    def report(self) -> dict[str, Any]:
        return {"full": self.full, "freeBytes": self.free, "reserveBytes": self.reserve_bytes}

    # ---- the journal's file ------------------------------------------------
    def install(self, journal: Any) -> None:
        """Replace the journal file's ``write`` with one that allocates before
        it grows, and allocate the holes an older version may have left."""
        try:
            rf = journal._FileJournal__journalFile
            mm = rf._ResizableFile__mm
        except AttributeError:
            return  # an in-memory journal: nothing to guard
        self._allocate(rf, 0, mm.size(), wait=False)
        original = rf.write

        def write(offset: int, values: bytes) -> None:
            mm = rf._ResizableFile__mm
            end = offset + len(values)
            if end > mm.size():
                current = mm.size()
                target = max(end, current + min(current, GROW_STEP_MAX))
                # Allocate first (the file grows; waits for space if it must),
                # then map the new size: no page of the mapping is ever a hole.
                self._allocate(rf, current, target - current, wait=True)
                mm.resize(target)
            original(offset, values)

        rf.write = write

    def _allocate(self, rf: Any, offset: int, length: int, wait: bool) -> bool:
        if length <= 0:
            return True
        while True:
            try:
                os.posix_fallocate(rf._ResizableFile__f.fileno(), offset, length)
                return True
            except OSError as exc:
                if not wait:
                    log.warning("could not allocate the journal file: %s", exc)
                    return False
                # The disk filled between two of refresh's checks, which run on this
                # very thread: waiting here, nothing would ever release the ballast,
                # and the node would hang as leader. Its space is for this append.
                if self._release_ballast():
                    log.error("disk full under a journal append (%s); ballast released", exc)
                    continue
                # Reaching this means the reserve and the ballast were eaten by
                # something else. Wait, never crash.
                log.error("journal cannot grow (%s); waiting for disk space", exc)
                time.sleep(0.5)


def enforce(obj: Any, guard: DiskGuard, election_s: float) -> None:
    """On the tick thread: a full node gives up leadership and stays out of elections."""
    from pysyncobj.monotonic import monotonic as pysyncobj_clock

    if not guard.refresh():
        guard.full_since = None
        return
    now = pysyncobj_clock()
    if guard.full_since is None:
        guard.full_since = now
    if obj._SyncObj__raftState == LEADER:
        if now - guard.full_since < STEP_DOWN_AFTER_S:
            # Gracefully first: pysyncobj hands over to a fully caught-up
            # follower (refused if none is, hence retried each second).
            if now - guard.transfer_at >= 1.0:
                guard.transfer_at = now
                obj.transferLeadership()
            return
        # Under steady writes no follower may ever be fully caught up: step down,
        # and the others elect a leader within an election timeout.
        log.warning("disk full: stepping down as leader")
        obj._SyncObj__raftLeader = None
        obj._SyncObj__setState(FOLLOWER)
    # A node that cannot append must not win an election: keep pushing its deadline.
    deadline = now + election_s
    if obj._SyncObj__raftElectionDeadline < deadline:
        obj._SyncObj__raftElectionDeadline = deadline


def while_full(obj: Any, message: dict) -> dict | None:
    """An append as a full node takes it: None to drop it, else the message.

    A full node must not grow its log, yet it must keep hearing the leader (or it
    would not know the leader, and its commit index would stall). So the entries
    are stripped and the rest handled as a heartbeat: after the skip of entries
    already held (raft_protocol.py), ``prevLogIdx`` is either this node's last
    entry (nothing truncated, answer "matched up to here") or the point before a
    real conflict (truncating the conflicting tail is what Raft does anyway, and
    it only frees space). A chunked transmission, whose ``prevLogIdx`` says
    nothing about this node's tail, and a snapshot are dropped; the leader
    resends them once space is back."""
    guard = getattr(obj, "disk_guard", None)
    if guard is None or not guard.full:
        return message
    if message.get("transmission") is not None:
        return None
    if message.get("entries"):
        return {**message, "entries": []}
    if message.get("serialized") is not None:
        return {k: v for k, v in message.items() if k != "serialized"}
    return message
