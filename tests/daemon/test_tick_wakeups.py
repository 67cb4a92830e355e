"""The tick thread sleeps until its next timer, and runtime attributes stay out of snapshots.

A real SafeSyncObj here (one node, loopback, the daemon's subclass of pysyncobj's SyncObj).
The daemon's three-node behaviour (failover, transfers, partitions) is covered by the
cluster tests; these pin what a one-node object can show."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pysyncobj import SyncObj, SyncObjConf

from daemon.localcluster import free_port, wait_for
from daemon.raft_disk import DiskGuard
from daemon.raft_protocol import SafeSyncObj
from daemon.state import ReplicatedState
from tests.daemon.syncobj_support import committed, record


def conf(tmp_path: Path, tick_s: float) -> SyncObjConf:
    return SyncObjConf(
        journalFile=str(tmp_path / "journal"),
        fullDumpFile=str(tmp_path / "dump"),
        autoTickPeriod=tick_s,
        appendEntriesUseBatch=False,  # as the daemon runs: commands wake the tick thread
        dynamicMembershipChange=True,
    )


def start(tmp_path: Path, address: str, tick_s: float = 0.1) -> tuple[SafeSyncObj, ReplicatedState]:
    state = ReplicatedState()
    obj = SafeSyncObj(address, [], conf=conf(tmp_path, tick_s), consumers=[state])
    wait_for(obj.isReady, what="a one-node cluster ready")
    wait_for(obj._isLeader, what="the one node leading")
    return obj, state


@pytest.fixture
def address() -> str:
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def node(tmp_path: Path, address: str) -> Iterator[tuple[SafeSyncObj, ReplicatedState]]:
    obj, state = start(tmp_path, address, tick_s=0.01)
    yield obj, state
    obj.destroy()


def count_ticks(obj: SyncObj, seconds: float) -> int:
    ticks: list[int] = []
    callback = lambda: ticks.append(1)  # noqa: E731
    obj.addOnTickCallback(callback)
    threading.Event().wait(seconds)  # a fixed window to count in, not a synchronisation
    obj.removeOnTickCallback(callback)
    return len(ticks)


def test_a_tick_thread_with_a_long_cap_still_wakes_for_its_heartbeat(
    tmp_path: Path, address: str
) -> None:
    # A 5 s cap: pysyncobj alone would tick about once in the window; the heartbeat
    # timer (100 ms) wakes it about ten times, and nothing makes it spin.
    obj, _ = start(tmp_path, address, tick_s=5.0)
    try:
        assert 5 <= count_ticks(obj, 1.0) <= 30
    finally:
        obj.destroy()


def test_a_command_wakes_a_sleeping_tick_thread(tmp_path: Path, address: str) -> None:
    # A 5 s cap: without the wake-ups the write would wait for the cap.
    obj, state = start(tmp_path, address, tick_s=5.0)
    try:
        for n in range(5):
            committed(state.record_executions, [record(n)], within_s=1.0)
        assert all(state.execution_by_id(f"id-{n}") is not None for n in range(5))
    finally:
        obj.destroy()


def test_a_snapshot_is_written_with_the_runtime_attributes_set(
    node: tuple[SafeSyncObj, ReplicatedState], tmp_path: Path
) -> None:
    obj, state = node
    obj.disk_guard = DiskGuard(tmp_path)
    committed(state.record_executions, [record(1)])
    committed(state.record_executions, [record(2)])
    before = obj._SyncObj__lastSerializedEntry
    obj.forceLogCompaction()
    wait_for(lambda: obj._SyncObj__lastSerializedEntry != before, what="the snapshot taken")


def test_a_loaded_snapshot_keeps_the_live_disk_guard(tmp_path: Path, address: str) -> None:
    # Replays the older build: a plain SyncObj whose disk guard went into the snapshot.
    state = ReplicatedState()
    old = SyncObj(address, [], conf=conf(tmp_path, 0.01), consumers=[state])
    try:
        wait_for(old._isLeader, what="the one node leading")
        frozen = DiskGuard(tmp_path)
        frozen.full = True
        old.disk_guard = frozen
        committed(state.record_executions, [record(1)])
        committed(state.record_executions, [record(2)])
        old.forceLogCompaction()
        wait_for(lambda: (tmp_path / "dump").exists(), what="the snapshot written")
    finally:
        old.destroy()

    live = DiskGuard(tmp_path)
    state = ReplicatedState()
    obj = SafeSyncObj(address, [], conf=conf(tmp_path, 0.01), consumers=[state])
    obj.disk_guard = live
    try:
        wait_for(lambda: state.execution_by_id("id-2") is not None, what="the snapshot loaded")
        assert obj.disk_guard is live and not obj.disk_guard.full
        assert obj.timed_poll.obj is obj
    finally:
        obj.destroy()
