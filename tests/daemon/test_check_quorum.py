"""CheckQuorum: a leader cut off from every peer steps down within about an
election timeout, answers writes 503 at once, and rejoins without flapping.

Runs in a private network namespace (tests/chaos/isolated_leader.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.netns import run_in_private_netns, why_no_netns

pytestmark = pytest.mark.cluster

NO_NETNS = why_no_netns()
ELECTION_TIMEOUT_S = 1.0  # the daemon's default raft.electionTimeoutMs


@pytest.mark.skipif(NO_NETNS is not None, reason=NO_NETNS or "")
def test_an_isolated_leader_steps_down_answers_503_at_once_and_rejoins_without_flapping(
    tmp_path: Path,
) -> None:
    result = run_in_private_netns("tests.chaos.isolated_leader", str(tmp_path), "--drop-s", "6")
    # Steps down after one election timeout without a majority's answers (plus the
    # ticks and polls in between), instead of leading alone for the whole cut.
    assert result["stepDownAfterS"] is not None, result
    assert result["stepDownAfterS"] < ELECTION_TIMEOUT_S * 2, result
    assert result["isolatedNodeDuringCut"]["role"] != "leader", result
    # Writes to it, in flight or new, are refused at once, not left to time out.
    assert result["writesToIsolatedAfterStepDown"] > 0, result
    assert result["slowestAnswerAfterStepDownS"] < 0.5, result
    # It did not bump its term while cut off (PreVote), so its return deposes no one:
    # the majority saw one leader and one term throughout, and all agree at the end.
    assert result["isolatedNodeDuringCut"]["term"] == result["termBefore"], result
    assert result["majoritySawAfterHeal"] == result["majorityLeadership"], result
    assert result["allAgreeAtEnd"] == result["majorityLeadership"], result
    assert result["rejoinedAfterHealS"] is not None and result["rejoinedAfterHealS"] < 3, result
