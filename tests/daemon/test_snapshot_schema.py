"""Snapshots carry their schema, so a new release loads an old release's snapshot."""

from __future__ import annotations

import logging
import pickle

import pytest

from daemon import state as state_module
from daemon.state import SNAPSHOT_SCHEMA, ReplicatedState


def _snapshot_with_one_execution() -> tuple[ReplicatedState, dict]:
    state = ReplicatedState()
    state.define_operation("w1", {"id": "op", "name": "op", "handler": {}}, _doApply=True)
    state.record_execution(
        {"id": "e1", "operationId": "op", "status": "success", "duration": 1.0,
         "finishedAtEpoch": 1_800_000_000.0, "node": "n0"},
        _doApply=True,
    )  # fmt: skip
    return state, pickle.loads(pickle.dumps(state._serialize()))


def test_a_snapshot_records_its_schema() -> None:
    _, data = _snapshot_with_one_execution()
    assert data["snapshot_schema"] == SNAPSHOT_SCHEMA


def test_a_snapshot_from_before_schemas_loads_and_is_upgraded() -> None:
    state, data = _snapshot_with_one_execution()
    del data["snapshot_schema"]  # what the first release wrote
    restored = ReplicatedState()
    restored._deserialize(data)
    assert restored.snapshot_schema == SNAPSHOT_SCHEMA
    assert restored.digest == state.digest
    assert restored.execution_by_id("e1")["operationId"] == "op"


def test_an_upgrade_step_runs_on_an_older_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook a future release uses: schema 2 renames a field; a schema-1 snapshot loads."""

    def rename_members(data: dict) -> dict:
        return {**data, "cluster_members": data.pop("members")}

    monkeypatch.setattr(state_module, "SNAPSHOT_SCHEMA", 2)
    monkeypatch.setattr(
        state_module, "SNAPSHOT_UPGRADES", [*state_module.SNAPSHOT_UPGRADES, rename_members]
    )
    _, data = _snapshot_with_one_execution()
    data["snapshot_schema"] = 1
    data["members"] = {"n0": {"raftAddress": "127.0.0.1:1", "httpUrl": "http://127.0.0.1:2"}}
    restored = ReplicatedState()
    restored._deserialize(data)
    assert restored.snapshot_schema == 2
    assert restored.cluster_members["n0"]["raftAddress"] == "127.0.0.1:1"


def test_a_snapshot_newer_than_the_build_loads_with_a_loud_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, data = _snapshot_with_one_execution()
    data["snapshot_schema"] = SNAPSHOT_SCHEMA + 1
    restored = ReplicatedState()
    with caplog.at_level(logging.CRITICAL, logger="daemon.state"):
        restored._deserialize(data)
    assert "newer than this build" in caplog.text
    assert restored.digest == state.digest
