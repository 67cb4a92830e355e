"""The replicated state machine: what every node agrees on through Raft.

Rules that keep the cluster alive (see ARCHITECTURE.md, "Facts about pysyncobj"):
- Every mutation is a ``@replicated`` method and deterministic: callers pass ids,
  timestamps and values in; nothing here reads a clock, randomness or the env.
- A replicated body must never raise: an exception makes every node retry the
  same log entry forever. Inputs are validated before submission, and each body
  still catches everything and logs it.
- Every write carries its own id, so applying it twice is a no-op: callbacks can
  be lost and a timeout does not mean the write failed.
- All attributes set after ``SyncObjConsumer.__init__`` are pickled into
  snapshots, so they are plain dicts, lists, deques and strings. The lock is set
  before it and therefore stays out of the snapshot.
- New replicated methods get a higher ``ver=``: method ids come from the sorted
  (ver, name) pairs, so adding a ver=0 method would make old journals replay the
  wrong method.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import threading
from collections import deque
from typing import Any

from pysyncobj import SyncObjConsumer, replicated

from daemon import rollups

log = logging.getLogger("daemon.state")

HISTORY_PER_OPERATION = 1000  # bounded per-operation window served by /operations/{id}/history
FEED_WINDOW = 100_000  # bounded global window served by /executions?after=
WRITE_IDS_KEPT = 10_000  # ids of recent non-execution writes, for idempotency
LEADER_CHANGES_KEPT = 10_000
ROLLUP_MINUTES_KEPT = 31 * 24 * 60
# The layout of the pickled state (snapshots). Bump it when a field changes shape, and add
# the step that upgrades the previous layout to SNAPSHOT_UPGRADES, so a new release loads
# an old snapshot. A field that is only added needs no step: loading keeps its default.
SNAPSHOT_SCHEMA = 1


def _chain(digest: str, kind: str, payload: Any) -> str:
    body = json.dumps([kind, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((digest + body).encode()).hexdigest()


class ReplicatedState(SyncObjConsumer):
    def __init__(self) -> None:
        # Set before the base __init__ so it is excluded from snapshots.
        self._lock = threading.RLock()
        super().__init__()
        self.operations: dict[str, dict] = {}
        self.history: dict[str, deque] = {}
        self.feed: deque = deque(maxlen=FEED_WINDOW)
        self.seq = 0
        self.execution_seq: dict[str, int] = {}  # execution id -> seq, for records in the feed
        self.write_ids: dict[str, int] = {}  # insertion-ordered, bounded
        self.lifetime = rollups.new_rollup()
        self.rollups: dict[int, list] = {}
        self.up_minutes: dict[int, int] = {}
        self.leader_term = 0
        self.leader_name = ""
        self.leader_changes: list[list] = []  # [epoch_s, term, name, previous]
        self.failover_count = 0
        self.draining: dict[str, bool] = {}
        self.members: dict[str, dict] = {}  # name -> {"raftAddress", "httpUrl"}
        self.digest = "0" * 64
        self.changes = 0  # effective mutations applied; cheap change detection for readers
        self.snapshot_schema = SNAPSHOT_SCHEMA

    # ---- snapshot hooks -------------------------------------------------
    def _deserialize(self, data: dict) -> None:
        with self._lock:
            super()._deserialize(upgrade_snapshot(data))

    # ---- helpers (called only with the lock held, inside replicated bodies)
    def _seen_write(self, write_id: str) -> bool:
        if write_id in self.write_ids:
            return True
        self.write_ids[write_id] = 1
        while len(self.write_ids) > WRITE_IDS_KEPT:
            del self.write_ids[next(iter(self.write_ids))]
        return False

    def _changed(self, kind: str, payload: Any) -> None:
        self.digest = _chain(self.digest, kind, payload)
        self.changes += 1

    # ---- replicated mutations -------------------------------------------
    @replicated
    def define_operation(self, write_id: str, op: dict) -> None:
        try:
            op_id = str(op["id"])
            op = dict(op)
        except Exception:
            log.exception("define_operation got a malformed definition; entry ignored")
            return
        try:
            with self._lock:
                if self._seen_write(write_id):
                    return
                existing = self.operations.get(op_id)
                if existing is not None:
                    op["createdAt"] = existing.get("createdAt", op.get("createdAt"))
                self.operations[op_id] = op
                self.history.setdefault(op_id, deque(maxlen=HISTORY_PER_OPERATION))
                self._changed("define", op)
        except Exception:
            log.exception("define_operation failed; entry ignored")

    @replicated
    def delete_operation(self, write_id: str, op_id: str) -> None:
        try:
            with self._lock:
                if self._seen_write(write_id):
                    return
                if self.operations.pop(op_id, None) is not None:
                    self.history.pop(op_id, None)
                    self._changed("delete", op_id)
        except Exception:
            log.exception("delete_operation failed; entry ignored")

    @replicated
    def record_execution(self, record: dict) -> None:
        """Append one execution record. The record's ``id`` makes a replay a no-op."""
        self._apply_record(record)

    # Added before the first release, so at ver=0; from now on new replicated
    # methods take ver >= 1 (see the module docstring).
    @replicated
    def record_executions(self, records: list) -> None:
        """Append several records in one log entry: one Raft round trip, one
        encryption and one pickle for a whole batch. Each record stays idempotent."""
        if not isinstance(records, list):
            log.error("record_executions got %s, not a list; entry ignored", type(records))
            return
        for record in records:
            self._apply_record(record)

    def _apply_record(self, record: dict) -> None:
        try:
            # Read every field before mutating anything, so a malformed entry
            # leaves the state untouched on every node alike.
            rid, op_id = str(record["id"]), str(record["operationId"])
            status, duration = str(record["status"]), float(record["duration"])
            minute = rollups.minute_of(float(record["finishedAtEpoch"]))
        except Exception:
            log.exception("malformed execution record; ignored")
            return
        try:
            with self._lock:
                if rid in self.execution_seq:
                    return
                self.seq += 1
                record = {**record, "seq": self.seq}
                if len(self.feed) == self.feed.maxlen:
                    self.execution_seq.pop(self.feed[0]["id"], None)
                self.feed.append(record)
                self.execution_seq[rid] = self.seq
                window = self.history.get(op_id)
                if window is None:
                    # The operation was deleted while this ran: keep the record
                    # in the feed, which is what the console mirrors.
                    window = self.history[op_id] = deque(maxlen=HISTORY_PER_OPERATION)
                window.append(record)
                rollups.add_execution(self.lifetime, status, duration)
                bucket = self.rollups.get(minute)
                if bucket is None:
                    bucket = self.rollups[minute] = rollups.new_rollup()
                    rollups.prune_rollups(self.rollups, minute, ROLLUP_MINUTES_KEPT)
                rollups.add_execution(bucket, status, duration)
                self._changed("exec", rid)
        except Exception:
            log.exception("recording execution %s failed; ignored", rid)

    @replicated
    def note_leader(self, term: int, name: str, epoch_s: float) -> None:
        """A node that became leader records it once per term."""
        try:
            with self._lock:
                if term <= self.leader_term:
                    return
                previous = self.leader_name
                self.leader_term, self.leader_name = term, name
                if previous and previous != name:
                    self.failover_count += 1
                self.leader_changes.append([epoch_s, term, name, previous])
                del self.leader_changes[:-LEADER_CHANGES_KEPT]
                self._changed("leader", [term, name])
        except Exception:
            log.exception("note_leader failed; entry ignored")

    @replicated
    def mark_up(self, minute: int) -> None:
        """The leader marks each minute the cluster could commit: the uptime metric."""
        try:
            with self._lock:
                if minute in self.up_minutes:
                    return
                self.up_minutes[minute] = 1
                cutoff = minute - ROLLUP_MINUTES_KEPT
                for old in [m for m in self.up_minutes if m <= cutoff]:
                    del self.up_minutes[old]
                self._changed("up", minute)
        except Exception:
            log.exception("mark_up failed; entry ignored")

    @replicated
    def set_draining(self, write_id: str, name: str, draining: bool) -> None:
        try:
            with self._lock:
                if self._seen_write(write_id):
                    return
                self.draining[name] = bool(draining)
                self._changed("drain", [name, bool(draining)])
        except Exception:
            log.exception("set_draining failed; entry ignored")

    @replicated
    def set_member(self, write_id: str, name: str, raft_address: str, http_url: str) -> None:
        try:
            with self._lock:
                if self._seen_write(write_id):
                    return
                self.members[name] = {"raftAddress": raft_address, "httpUrl": http_url}
                self._changed("member", [name, raft_address, http_url])
        except Exception:
            log.exception("set_member failed; entry ignored")

    @replicated
    def remove_member(self, write_id: str, name: str) -> None:
        try:
            with self._lock:
                if self._seen_write(write_id):
                    return
                if self.members.pop(name, None) is not None:
                    self.draining.pop(name, None)
                    self._changed("unmember", name)
        except Exception:
            log.exception("remove_member failed; entry ignored")

    # ---- reads (any thread) ---------------------------------------------
    def has_write(self, write_id: str) -> bool:
        with self._lock:
            return write_id in self.write_ids

    def execution_by_id(self, execution_id: str) -> dict | None:
        with self._lock:
            seq = self.execution_seq.get(execution_id)
            if seq is None:
                return None
            # seq values in the feed are contiguous, so the record's position is known.
            first = self.feed[0]["seq"]
            return self.feed[seq - first]

    def get_operation(self, op_id: str) -> dict | None:
        with self._lock:
            return self.operations.get(op_id)

    def list_operations(self) -> list[dict]:
        with self._lock:
            return [self.operations[k] for k in sorted(self.operations)]

    def operation_history(
        self, op_id: str, limit: int, before: int | None, after: int | None
    ) -> list[dict] | None:
        with self._lock:
            window = self.history.get(op_id)
            if window is None:
                return None if op_id not in self.operations else []
            records = list(window)
        if before is not None:
            records = [r for r in records if r["seq"] < before]
        if after is not None:
            records = [r for r in records if r["seq"] > after][:limit]
            return records
        return records[-limit:]

    def executions_after(self, after: int, limit: int) -> dict:
        with self._lock:
            latest = self.seq
            oldest = self.feed[0]["seq"] if self.feed else latest + 1
            start = max(after + 1, oldest)
            offset = start - oldest
            # islice walks the deque once; indexing each position would walk it per item.
            records = list(itertools.islice(self.feed, offset, offset + limit))
        next_after = records[-1]["seq"] if records else max(after, min(latest, oldest - 1))
        return {
            "executions": records,
            "nextAfter": next_after,
            "oldestSeq": oldest,
            "latestSeq": latest,
            "gap": after + 1 < oldest,
        }

    def rollup_window(self, now_minute: int, minutes: int | None) -> list:
        with self._lock:
            if minutes is None:
                return rollups.merge_rollups([self.lifetime])
            return rollups.window_rollup(self.rollups, now_minute, minutes)

    def health_window(self, now_minute: int, minutes: int, now_epoch: float) -> dict:
        with self._lock:
            up = sum(1 for m in self.up_minutes if now_minute - minutes < m <= now_minute)
            since = now_epoch - minutes * 60
            failovers = sum(
                1 for c in self.leader_changes if c[0] > since and c[3] and c[3] != c[2]
            )
        return {"uptimeMinutes": up, "failoverCount": failovers}

    def draining_of(self, name: str) -> bool:
        with self._lock:
            return self.draining.get(name, False)

    def members_snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {k: dict(v) for k, v in self.members.items()}


def _schema_0_to_1(data: dict) -> dict:
    # Schema 0 (before snapshots were versioned) has the same fields as 1.
    return data


SNAPSHOT_UPGRADES = [_schema_0_to_1]  # index i upgrades schema i to i + 1


def upgrade_snapshot(data: dict) -> dict:
    """Bring a loaded snapshot to this build's schema; runs on the tick thread, never raises."""
    found = data.get("snapshot_schema", 0)
    if not isinstance(found, int) or found > SNAPSHOT_SCHEMA:
        # Only a binary rollback past a schema change gets here; the code-version switch
        # refuses that rollback, so this is an operator override. Load what we can.
        log.critical(
            "snapshot schema %r is newer than this build's %d: fields this build does not "
            "know are kept as they are",
            found,
            SNAPSHOT_SCHEMA,
        )
        return data
    for step in SNAPSHOT_UPGRADES[found:SNAPSHOT_SCHEMA]:
        data = step(data)
    return {**data, "snapshot_schema": SNAPSHOT_SCHEMA}
