"""(a) The ceiling: three pysyncobj nodes in ONE process, no HTTP.

Each node is a real ``SyncObj`` configured by ``daemon.raft.build_conf`` (journal,
dump file, password, timing) with ``daemon.state.ReplicatedState`` as consumer.
The main thread submits ``record_execution`` calls round-robin to the three
nodes (or only to the leader), never more than ``inflight`` unanswered at once.
At the end every node must have applied the same records with the same digest.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj

from bench.common import RAFT_PASSWORD, RaftTiming
from daemon.config import Config, RaftSettings
from daemon.localcluster import free_port
from daemon.raft import build_conf
from daemon.state import ReplicatedState


@dataclass
class Member:
    obj: SyncObj
    state: ReplicatedState


@dataclass
class Tally:
    inflight: int
    codes: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = threading.BoundedSemaphore(self.inflight)

    def callback(self, result: Any, error: int) -> None:
        with self.lock:
            self.codes[error] += 1
        self.slots.release()


def start_members(timing: RaftTiming, base: Path) -> list[Member]:
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    members = []
    for i, address in enumerate(addresses):
        data_dir = base / f"node-{i}"
        data_dir.mkdir(parents=True)
        config = Config(
            node_name=f"bench-{i}",
            data_dir=data_dir,
            raft_bind=address,
            raft_advertise=address,
            raft=RaftSettings(
                heartbeat_interval_ms=timing.heartbeat_ms,
                election_timeout_ms=timing.election_ms,
                append_entries_batch=timing.batch,
                password=RAFT_PASSWORD,
            ),
        )
        state = ReplicatedState()
        peers = [a for a in addresses if a != address]
        obj = SyncObj(
            address, peers, conf=build_conf(config, lambda old, new: None), consumers=[state]
        )
        members.append(Member(obj, state))
    return members


def wait_leader(members: list[Member], timeout: float = 30) -> Member:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = {str(m.obj._getLeader()) for m in members}
        if len(leaders) == 1 and "None" not in leaders and all(m.obj.isReady() for m in members):
            return next(m for m in members if m.obj._isLeader())
        time.sleep(0.05)
    raise RuntimeError("no leader elected")


def make_record(i: int) -> dict[str, Any]:
    now = time.time()
    return {
        "id": uuid.uuid4().hex,
        "operationId": "noop",
        "status": "success",
        "duration": 0.05,
        "startedAt": "2025-01-01T00:00:00Z",
        "finishedAt": "2025-01-01T00:00:00Z",
        "finishedAtEpoch": now,
        "node": f"bench-{i % 3}",
        "attempts": 1,
        "cached": False,
        "error": None,
        "result": None,
    }


def submit_for(members: list[Member], targets: list[Member], tally: Tally, duration: float) -> int:
    """Submit until `duration` elapses; return how many calls were submitted."""
    stop_at = time.monotonic() + duration
    i = 0
    while time.monotonic() < stop_at:
        if not tally.slots.acquire(timeout=1.0):
            continue
        target = targets[i % len(targets)]
        target.state.record_execution(make_record(i), callback=tally.callback)
        i += 1
    return i


def drain(tally: Tally, timeout: float) -> bool:
    """Wait until every submitted call has been answered (all slots free)."""
    deadline = time.monotonic() + timeout
    got = 0
    while got < tally.inflight and time.monotonic() < deadline:
        if tally.slots.acquire(timeout=0.5):
            got += 1
    for _ in range(got):
        tally.slots.release()
    return got == tally.inflight


def converged(members: list[Member], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        views = []
        for m in members:
            with m.state._lock:
                views.append(
                    {"applied": m.obj.raftLastApplied, "seq": m.state.seq, "digest": m.state.digest}
                )
        if len({(v["seq"], v["digest"]) for v in views}) == 1 or time.monotonic() > deadline:
            return views
        time.sleep(0.1)


def run_inproc(timing: RaftTiming, duration: float, inflight: int, target: str) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="bench-inproc-"))
    members = start_members(timing, base)
    try:
        leader = wait_leader(members)
        targets = [leader] if target == "leader" else members
        tally = Tally(inflight)
        seq0 = leader.state.seq
        t0 = time.monotonic()
        submitted = submit_for(members, targets, tally, duration)
        elapsed = time.monotonic() - t0
        seq1 = leader.state.seq
        drained = drain(tally, timeout=60)
        views = converged(members, timeout=60)
    finally:
        for m in members:
            m.obj.destroy()
        time.sleep(0.5)
        shutil.rmtree(base, ignore_errors=True)
    codes = {FAIL_REASON_NAMES.get(k, str(k)): v for k, v in tally.codes.items()}
    return {
        "timing": timing,
        "target": target,
        "inflight": inflight,
        "durationS": round(elapsed, 3),
        "submitted": submitted,
        "callbacks": codes,
        "allAnswered": drained,
        "commitsPerS": round((seq1 - seq0) / elapsed, 1),
        "nodes": views,
        "sameDigest": len({v["digest"] for v in views}) == 1,
    }


FAIL_REASON_NAMES = {
    getattr(FAIL_REASON, name): name for name in dir(FAIL_REASON) if name.isupper()
}
