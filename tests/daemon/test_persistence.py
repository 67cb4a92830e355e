"""Restart and snapshot: state survives from the data dir; a snapshot frees disk."""

from __future__ import annotations

import os

import pytest

from tests.cluster_harness import Cluster, wait_for

pytestmark = pytest.mark.cluster


def test_full_restart_keeps_definitions_history_and_metrics(make_cluster) -> None:
    cluster: Cluster = make_cluster()
    node = cluster.nodes[0]
    cluster.define(node, {"id": "keep-me", "name": "Keep", "handler": {"kind": "noop"}})
    ids = [
        cluster.post(n, "/execute/keep-me").json()["id"] for n in cluster.nodes for _ in range(5)
    ]
    # A snapshot in the middle: restart must combine the dump and the journal.
    assert cluster.post(cluster.nodes[1], "/admin/snapshot").status_code == 200
    ids += [cluster.post(node, "/execute/keep-me").json()["id"] for _ in range(3)]
    before = cluster.get(node, "/metrics").json()

    cluster.stop_all()
    for n in cluster.nodes:
        cluster.start_node(n)
    cluster.wait_ready()
    cluster.wait_converged()

    for n in cluster.nodes:
        assert cluster.get(n, "/operations/keep-me").json()["name"] == "Keep"
        history = cluster.get(n, "/operations/keep-me/history").json()
        assert [r["id"] for r in history] == ids
        metrics = cluster.get(n, "/metrics").json()
        assert metrics["totalOperations"] == before["totalOperations"] == len(ids)
        assert metrics["successRate"] == before["successRate"]


def test_snapshot_shrinks_the_journal_file(make_cluster) -> None:
    cluster: Cluster = make_cluster(overrides={"raft": {"snapshotIntervalOps": 10**8}})
    node = cluster.nodes[0]
    cluster.define(
        node,
        {"id": "bulky", "name": "Bulky", "handler": {"kind": "log", "message": "x" * 4000}},
    )
    for _ in range(300):
        assert cluster.post(node, "/execute/bulky").status_code == 200
    journal = node.data_dir / "raft.journal"
    # 300 records of ~1.5 kB each (results are capped at 1 kB) in a file that doubles.
    wait_for(lambda: os.path.getsize(journal) >= 512 * 1024, what="a journal over 512 kB")
    before = os.path.getsize(journal)

    result = cluster.post(node, "/admin/snapshot", timeout=60).json()
    assert result["status"] == "compacted"
    assert result["journalBytesAfter"] < result["journalBytesBefore"]
    after = os.path.getsize(journal)
    assert after < before / 4, (before, after)
    # Nothing was lost by compacting.
    assert len(cluster.get(node, "/operations/bulky/history?limit=1000").json()) == 300
    assert cluster.post(node, "/execute/bulky").status_code == 200


def test_data_dir_stays_bounded_under_steady_load(make_cluster) -> None:
    """Automatic compaction every snapshotIntervalOps entries, and the journal
    file is truncated after each one, so it does not grow with the log."""
    cluster: Cluster = make_cluster(overrides={"raft": {"snapshotIntervalOps": 150}})
    node = cluster.nodes[0]
    message = "y" * 900
    cluster.define(
        node, {"id": "steady", "name": "s", "handler": {"kind": "log", "message": message}}
    )
    journal = node.data_dir / "raft.journal"
    sizes = []
    for _round in range(4):
        for _ in range(200):
            assert cluster.post(node, "/execute/steady").status_code == 200
        sizes.append(os.path.getsize(journal))
    total_written = 4 * 200 * len(message)
    # Without truncation the file only grows (and doubles); here it stays near
    # one compaction interval's worth of entries.
    assert max(sizes) < total_written / 2, sizes
    assert sizes[-1] <= max(sizes[:3]) * 1.5, sizes
