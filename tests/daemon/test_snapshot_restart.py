"""A follower restarted from a snapshot newer than its saved commit index catches up.

pysyncobj saves the commit index in the journal's meta file once a second, but a
snapshot at once: a node stopped within that second restarts with a snapshot at index K
and a commit index below K, below even its log's first entry. Its rejections then asked
the leader to start below its log, an append it could never match, and it stayed
not-ready for as long as the leader held those entries (it failed live rolling upgrades,
whose backup takes a snapshot just before the first node restarts).

Real SafeSyncObj nodes on loopback (the daemon's subclass of pysyncobj's SyncObj), three of
them, in this process; the saved commit index is set back with pysyncobj's own meta storer,
as a stop within that second leaves it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pysyncobj import SyncObjConf
from pysyncobj.journal import MetaStorer

from daemon.localcluster import free_port, wait_for
from daemon.raft_protocol import SafeSyncObj
from daemon.state import ReplicatedState
from tests.daemon.syncobj_support import committed, record


def conf(data: Path) -> SyncObjConf:
    data.mkdir(parents=True, exist_ok=True)
    return SyncObjConf(
        journalFile=str(data / "journal"),
        fullDumpFile=str(data / "dump"),
        autoTickPeriod=0.01,
        appendEntriesUseBatch=False,
        dynamicMembershipChange=True,
        logCompactionMinEntries=10**9,  # only the forced compaction below
        logCompactionMinTime=10**9,
    )


class Node:
    def __init__(self, root: Path, address: str, others: list[str]) -> None:
        self.data = root / address.replace(":", "_")
        self.address = address
        self.others = others
        self.state = ReplicatedState()
        self.obj = SafeSyncObj(address, others, conf=conf(self.data), consumers=[self.state])

    def stop(self) -> None:
        """destroy() only asks the tick thread to stop: wait until it has, so nothing
        (its once-a-second meta save included) writes the files after this."""
        self.obj.destroy()
        self.obj._SyncObj__thread.join(10)
        assert not self.obj._SyncObj__thread.is_alive()

    def restart(self) -> None:
        self.stop()
        self.state = ReplicatedState()
        self.obj = SafeSyncObj(
            self.address, self.others, conf=conf(self.data), consumers=[self.state]
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[Node]]:
    addresses = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    nodes = [Node(tmp_path, a, [o for o in addresses if o != a]) for a in addresses]
    try:
        yield nodes
    finally:
        for node in nodes:
            node.obj.destroy()


def leader_of(nodes: list[Node]) -> Node:
    wait_for(lambda: any(n.obj._isLeader() for n in nodes), what="a leader")
    return next(n for n in nodes if n.obj._isLeader())


def third_node(leader: Node, other: Node) -> object:
    """pysyncobj's node object for `other` on `leader`."""
    return next(n for n in leader.obj._SyncObj__otherNodes if n.address == other.address)


def test_a_follower_whose_saved_commit_index_lags_its_snapshot_rejoins_and_gets_ready(
    cluster: list[Node],
) -> None:
    leader = leader_of(cluster)
    for n in range(10):
        committed(leader.state.record_executions, [record(n)])
    follower = next(n for n in cluster if n is not leader)
    wait_for(lambda: follower.state.execution_by_id("id-9") is not None, what="replicated")

    before = follower.obj._SyncObj__lastSerializedEntry
    follower.obj.forceLogCompaction()
    wait_for(lambda: follower.obj._SyncObj__lastSerializedEntry != before, what="a snapshot")
    snapshot_index = follower.obj.raftLastApplied
    follower.stop()
    # The meta file as saved a second before the stop: the commit index from the start.
    meta = MetaStorer(str(follower.data / "journal.meta"))
    meta.storeMeta({**meta.getMeta(), "raftCommitIndex": 2})

    for n in range(10, 20):  # entries the follower misses
        committed(leader.state.record_executions, [record(n)])
    # A new leader (as an upgrade hands leadership away) starts by sending the follower
    # its own last index, which the follower lacks: the follower's rejection decides
    # where it resumes. It holds every entry (no compaction).
    third = next(n for n in cluster if n is not leader and n is not follower)
    wait_for(lambda: leader.obj._SyncObj__raftMatchIndex.get(third_node(leader, third), 0)
             == leader.obj._SyncObj__getCurrentLogIndex(), what="the third node caught up")  # fmt: skip
    leader.obj.transferLeadership(third.address)
    wait_for(third.obj._isLeader, what="leadership moved to the third node")
    committed(third.state.record_executions, [record(20)])
    follower.restart()

    wait_for(follower.obj.isReady, timeout=15, what="the restarted follower ready")
    assert follower.obj.raftLastApplied > snapshot_index
    wait_for(lambda: follower.state.execution_by_id("id-20") is not None, what="caught up")
    assert follower.obj.raftCommitIndex >= follower.obj.raftLastApplied


def test_a_loaded_snapshot_counts_as_committed(cluster: list[Node]) -> None:
    leader = leader_of(cluster)
    for n in range(5):
        committed(leader.state.record_executions, [record(n)])
    before = leader.obj._SyncObj__lastSerializedEntry
    leader.obj.forceLogCompaction()
    wait_for(lambda: leader.obj._SyncObj__lastSerializedEntry != before, what="a snapshot")
    for node in cluster:
        node.stop()
    meta = MetaStorer(str(leader.data / "journal.meta"))
    meta.storeMeta({**meta.getMeta(), "raftCommitIndex": 2})

    # Alone (its peers stay down) it can learn nothing from a leader: only the snapshot.
    leader.state = ReplicatedState()
    leader.obj = SafeSyncObj(
        leader.address, leader.others, conf=conf(leader.data), consumers=[leader.state]
    )
    wait_for(lambda: leader.obj.raftLastApplied > 2, what="the snapshot loaded")
    assert leader.obj.raftCommitIndex >= leader.obj.raftLastApplied
