"""The replicated state machine on its own: deterministic, idempotent, never raising.

Replicated methods are applied here the way pysyncobj applies a committed log
entry (`_doApply=True`), without a cluster.
"""

from __future__ import annotations

import pickle

from daemon.state import ReplicatedState


def record(rid: str, op: str = "op", status: str = "success", at: float = 1_800_000_000.0) -> dict:
    return {
        "id": rid,
        "operationId": op,
        "status": status,
        "duration": 1.5,
        "finishedAtEpoch": at,
        "node": "unrdf-daemon-0",
    }


def apply(state: ReplicatedState, method: str, *args: object) -> None:
    getattr(state, method)(*args, _doApply=True)


def test_applying_the_same_execution_twice_is_a_no_op() -> None:
    state = ReplicatedState()
    apply(state, "define_operation", "w1", {"id": "op", "name": "op", "handler": {"kind": "noop"}})
    apply(state, "record_execution", record("e1"))
    digest = state.digest
    apply(state, "record_execution", record("e1"))
    assert state.seq == 1
    assert state.digest == digest
    assert len(state.operation_history("op", 100, None, None)) == 1


def test_same_commands_in_the_same_order_give_the_same_digest() -> None:
    a, b = ReplicatedState(), ReplicatedState()
    for state in (a, b):
        apply(state, "define_operation", "w1", {"id": "op", "name": "op", "handler": {}})
        apply(state, "record_execution", record("e1"))
        apply(state, "note_leader", 3, "unrdf-daemon-1", 1_800_000_000.0)
    assert a.digest == b.digest
    apply(b, "record_execution", record("e2"))
    assert a.digest != b.digest


def test_a_poisoned_entry_is_ignored_and_the_state_keeps_applying() -> None:
    state = ReplicatedState()
    apply(state, "record_execution", {"id": "broken"})  # missing every other field
    apply(state, "define_operation", "w1", "not a dict")
    apply(state, "record_execution", record("e1"))
    assert state.seq == 1
    assert state.execution_by_id("e1")["seq"] == 1


def test_feed_pages_in_commit_order_and_reports_gaps() -> None:
    state = ReplicatedState()
    for i in range(5):
        apply(state, "record_execution", record(f"e{i}"))
    page = state.executions_after(2, 2)
    assert [r["seq"] for r in page["executions"]] == [3, 4]
    assert page["nextAfter"] == 4 and page["gap"] is False
    assert state.executions_after(5, 10)["executions"] == []


def test_failover_count_counts_changes_of_leader_not_terms() -> None:
    state = ReplicatedState()
    apply(state, "note_leader", 1, "a", 1.0)
    apply(state, "note_leader", 2, "a", 2.0)  # re-elected: not a failover
    apply(state, "note_leader", 3, "b", 3.0)
    apply(state, "note_leader", 3, "c", 4.0)  # stale term: ignored
    assert state.failover_count == 1
    assert state.leader_name == "b"


def test_snapshot_round_trip_keeps_everything_but_the_lock() -> None:
    state = ReplicatedState()
    apply(state, "define_operation", "w1", {"id": "op", "name": "op", "handler": {}})
    apply(state, "record_execution", record("e1"))
    data = pickle.loads(pickle.dumps(state._serialize()))
    assert "_lock" not in data
    restored = ReplicatedState()
    restored._deserialize(data)
    assert restored.digest == state.digest
    assert restored.execution_by_id("e1")["operationId"] == "op"
