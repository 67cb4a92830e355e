"""The shared history checker (tests/chaos and the console's drills both use it) on
histories built by hand, one fault in each."""

from __future__ import annotations

from daemon.localcluster.checker import (
    ACKED_EVERYWHERE,
    EQUAL_DIGESTS,
    EXACTLY_ONCE,
    MIRROR_EQUAL,
    NONE_UNSENT,
    SAME_EVERYWHERE,
    check_history,
)

ACKED = ["a", "b", "c"]


def failed(verdict: object) -> set[str]:
    return {c.name for c in verdict.failed()}  # type: ignore[attr-defined]


def test_a_clean_history_passes_every_check_and_says_so() -> None:
    verdict = check_history(
        ACKED,
        {"n0": ["a", "b", "c"], "n1": ["a", "c", "b"]},
        allowed_unacked=0,
        points={"n0": (7, "d1"), "n1": (7, "d1")},
        daemon_history=[(1, "a"), (2, "b"), (3, "c")],
        mirrored_history=[(3, "c"), (1, "a"), (2, "b")],
    )
    assert verdict.ok, verdict.as_json()
    assert {c.name for c in verdict.checks} == {
        ACKED_EVERYWHERE, EXACTLY_ONCE, NONE_UNSENT, SAME_EVERYWHERE, EQUAL_DIGESTS, MIRROR_EQUAL
    }  # fmt: skip


def test_an_acknowledged_execution_missing_on_one_node_fails_naming_the_node() -> None:
    verdict = check_history(ACKED, {"n0": ["a", "b", "c"], "n1": ["a", "b"]})
    assert failed(verdict) == {ACKED_EVERYWHERE, SAME_EVERYWHERE}
    assert "n1 lacks 1 (c)" in verdict.failed()[0].detail
    assert verdict.nodes["n1"]["missingAcked"] == 1


def test_an_execution_held_twice_fails_exactly_once() -> None:
    verdict = check_history(ACKED, {"n0": ["a", "b", "b", "c"]})
    assert failed(verdict) == {EXACTLY_ONCE}


def test_executions_no_client_was_told_about_fail_only_beyond_the_failed_requests() -> None:
    feeds = {"n0": ["a", "b", "c", "x", "y"]}
    assert check_history(ACKED, feeds, allowed_unacked=2).ok
    assert failed(check_history(ACKED, feeds, allowed_unacked=1)) == {NONE_UNSENT}


def test_unequal_digests_once_healed_fail() -> None:
    verdict = check_history(ACKED, {"n0": ACKED}, points={"n0": (7, "d1"), "n1": (7, "d2")})
    assert failed(verdict) == {EQUAL_DIGESTS}


def test_a_mirror_that_lacks_or_invents_an_execution_fails() -> None:
    daemon = [(1, "a"), (2, "b"), (3, "c")]
    lacking = check_history(
        ACKED, {"n0": ACKED}, daemon_history=daemon, mirrored_history=daemon[:2]
    )
    inventing = check_history(
        ACKED, {"n0": ACKED}, daemon_history=daemon, mirrored_history=[*daemon, (4, "z")]
    )
    assert failed(lacking) == {MIRROR_EQUAL} and "1 not mirrored" in lacking.failed()[0].detail
    assert failed(inventing) == {MIRROR_EQUAL}
