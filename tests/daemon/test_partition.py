"""A leader cut off from its peers by a network partition catches up once healed.

The cluster scenario runs in a private network namespace (tests/chaos); the
readiness rule for a node that cannot catch up is checked on its own, with time
passed in, since a stuck node cannot be produced on purpose once the bug is fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.raft_liveness import CatchUpWatch
from tests.chaos.netns import run_in_private_netns, why_no_netns

NO_NETNS = why_no_netns()


@pytest.mark.cluster
@pytest.mark.skipif(NO_NETNS is not None, reason=NO_NETNS or "")
def test_a_partitioned_leader_catches_up_and_no_acknowledged_execution_is_lost(
    tmp_path: Path,
) -> None:
    result = run_in_private_netns("tests.chaos.leader_partition", str(tmp_path), "--drop-s", "6")
    summary = {k: v for k, v in result.items() if k != "rejectionSample"}
    # The cut-off leader held entries it could not commit: the tail to overwrite.
    assert result["oldLeaderUncommittedTail"] > 0, summary
    # The majority elected a new leader and kept acknowledging writes during the cut.
    assert result["newLeaderAfterS"] is not None, summary
    assert result["acked"] > 200 and result["acked"] == result["ackedDistinct"], summary
    # Healed: the old leader applies what the others had committed within seconds...
    assert result["oldLeaderCaughtUpAfterHealS"] is not None, summary
    assert result["oldLeaderCaughtUpAfterHealS"] < 5, summary
    # ...every node holds the same state, and every acknowledged execution exactly once.
    assert result["converged"], summary
    for name, held in result["executions"].items():
        assert held["missingAcked"] == 0, (name, summary)
        assert held["duplicated"] == 0, (name, summary)
    assert all(view["ready"] for view in result["nodes"].values()), summary
    # Re-sent entries a follower already holds are skipped, not truncated and re-added.
    assert result["criticalTruncations"] == 0, summary


def test_a_follower_that_applies_the_leaders_commits_in_time_stays_caught_up() -> None:
    watch = CatchUpWatch(bound_s=5)
    for second in range(20):
        # Always a little behind the leader's latest commit, never by 5 s.
        watch.observe(now=float(second), leader_commit=100 * second, applied=100 * second - 30)
        assert watch.caught_up


def test_a_node_behind_the_leaders_commit_for_longer_than_the_bound_is_not_caught_up() -> None:
    watch = CatchUpWatch(bound_s=5)
    watch.observe(now=0.0, leader_commit=1000, applied=900)
    watch.observe(now=4.9, leader_commit=1500, applied=900)
    assert watch.caught_up  # behind, but not yet for the bound
    watch.observe(now=5.1, leader_commit=1600, applied=900)
    assert not watch.caught_up
    assert watch.behind_for_s(now=6.0) == pytest.approx(6.0)
    # Catching up on what the leader had committed 5 s earlier makes it ready again.
    watch.observe(now=10.0, leader_commit=1700, applied=1500)
    assert watch.caught_up
