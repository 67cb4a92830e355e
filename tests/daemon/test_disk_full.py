"""A node whose data filesystem fills up refuses writes and stays up, then resumes.

The scenario (tests/chaos/disk_full.py) runs in network, PID and mount namespaces
of its own, with the node's data dir on a small tmpfs it mounts there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.raft_disk import DiskGuard
from tests.chaos.netns import run_in_private_netns, why_no_netns

NO_NETNS = why_no_netns()


def _assert_survived(result: dict) -> None:
    # The node noticed, refused writes with a clear status, and kept serving reads.
    assert result["fullDetectedAfterS"] is not None, result
    assert result["refusedStatus"] == 507, result
    assert result["refusedBody"]["error"].startswith("disk full"), result
    assert result["refusedRetryAfter"] is not None, result
    assert result["aliveWhileFull"] and not result["sigbus"], result
    assert result["liveWhileFull"] == 200 and result["readsWhileFull"] == 200, result
    assert result["diskWhileFull"]["full"] is True, result
    # The rest of the cluster kept acknowledging writes.
    assert result["othersKeptAckingAfterS"] is not None, result
    # Space freed: the node takes writes again, and nothing acknowledged is lost.
    assert result["resumedAfterFreeS"] is not None, result
    assert result["firstWriteOkAfterFreeS"] is not None, result
    assert result["converged"], result
    assert result["check"]["ok"], result


@pytest.mark.cluster
@pytest.mark.skipif(NO_NETNS is not None, reason=NO_NETNS or "")
def test_a_follower_with_a_full_disk_refuses_writes_stays_up_and_resumes(tmp_path: Path) -> None:
    result = run_in_private_netns("tests.chaos.disk_full", str(tmp_path), "--role", "follower")
    _assert_survived(result)


@pytest.mark.cluster
@pytest.mark.skipif(NO_NETNS is not None, reason=NO_NETNS or "")
def test_a_leader_with_a_full_disk_hands_over_leadership_and_resumes(tmp_path: Path) -> None:
    result = run_in_private_netns("tests.chaos.disk_full", str(tmp_path), "--role", "leader")
    _assert_survived(result)
    assert result["leaderMovedAfterS"] is not None, result


@pytest.mark.skipif(NO_NETNS is not None, reason=NO_NETNS or "")
def test_a_journal_that_must_grow_on_a_disk_just_filled_takes_the_ballast_and_does_not_hang(
    tmp_path: Path,
) -> None:
    # The disk guard's check and the append run on one thread: before the fix the
    # append waited for space forever, and its node hung on as a leader nobody followed.
    result = run_in_private_netns("tests.chaos.journal_growth", str(tmp_path), timeout_s=60)
    assert result["ballastLaid"], result
    assert result["appendFinished"], result
    assert result["full"] and not result["ballastLeft"], result


def test_the_guard_is_full_under_the_reserve_and_clears_only_past_the_margin(
    tmp_path: Path,
) -> None:
    guard = DiskGuard(tmp_path, reserve_bytes=1 << 62)  # more than any disk has free
    assert guard.refresh(force=True)
    assert guard.report()["full"] is True
    guard.reserve_bytes = 0
    assert not guard.refresh(force=True)


def test_the_journal_file_has_no_holes_as_it_grows(tmp_path: Path) -> None:
    # A hole in the mapped journal is what raised SIGBUS on a full disk.
    from pysyncobj.journal import FileJournal

    journal = FileJournal(str(tmp_path / "raft.journal"))
    guard = DiskGuard(tmp_path, reserve_bytes=0)
    guard.install(journal)
    for index in range(1, 3000):
        journal.add(b"x" * 700, index, 1)
    stat = (tmp_path / "raft.journal").stat()
    assert stat.st_size > 1 << 20
    assert stat.st_blocks * 512 >= stat.st_size
    journal._destroy()


def test_a_full_node_takes_appends_as_heartbeats_and_drops_transmissions() -> None:
    from daemon.raft_disk import while_full

    class Obj:
        disk_guard = DiskGuard(".", reserve_bytes=0)

    obj = Obj()
    append = {"type": "append_entries", "term": 2, "prevLogIdx": 5, "prevLogTerm": 2,
              "entries": [("cmd", 6, 2)], "commit_index": 5}  # fmt: skip
    assert while_full(obj, append) is append  # not full: untouched
    obj.disk_guard.full = True
    assert while_full(obj, append) == {**append, "entries": []}
    assert while_full(obj, {**append, "entries": [], "transmission": "start"}) is None
