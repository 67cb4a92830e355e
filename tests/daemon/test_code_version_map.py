"""After a snapshot is loaded, a method added at ver=1 still works where version 1 is on.

pysyncobj 0.3.17 rebuilds its method map for version 0 when it loads a snapshot, whatever
version is enabled; daemon.raft_protocol.keep_code_version_map puts it back. A real SyncObj here
(one node, loopback), with a state that has a ver=1 method as release 2 of the
mixed-version test does."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pysyncobj import SyncObj, SyncObjConf, replicated

from daemon.localcluster import free_port, wait_for
from daemon.raft_protocol import keep_code_version_map
from daemon.state import ReplicatedState


class Release2State(ReplicatedState):
    @replicated(ver=1)
    def set_note(self, key: str, value: str) -> None:
        with self._lock:
            self.__dict__.setdefault("notes", {})[key] = value


def start(tmp_path: Path, address: str) -> tuple[SyncObj, Release2State]:
    state = Release2State()
    conf = SyncObjConf(
        journalFile=str(tmp_path / "journal"),
        fullDumpFile=str(tmp_path / "dump"),
        autoTickPeriod=0.01,
        dynamicMembershipChange=True,
    )
    obj = SyncObj(address, [], conf=conf, consumers=[state])
    wait_for(obj.isReady, what="a one-node cluster ready")
    wait_for(obj._isLeader, what="the one node leading")
    return obj, state


def committed(call: Callable[..., None], *args: object) -> None:
    done = threading.Event()
    errors: list[int] = []
    call(*args, callback=lambda result, error: (errors.append(error), done.set()))
    assert done.wait(10) and errors == [0], errors


def test_a_ver_1_method_works_after_a_restart_from_a_snapshot(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    obj, state = start(tmp_path, address)
    try:
        committed(obj.setCodeVersion, 1)
        committed(state.set_note, "a", "1")
        obj.forceLogCompaction()
        wait_for(lambda: (tmp_path / "dump").exists(), what="the snapshot written")
    finally:
        obj.destroy()

    obj, state = start(tmp_path, address)
    try:
        assert obj.getCodeVersion() == 1 and state.notes == {"a": "1"}
        with pytest.raises(KeyError):  # pysyncobj's own map, right after loading
            state.set_note("b", "2")
        keep_code_version_map(obj, None)
        committed(state.set_note, "b", "2")
        assert state.notes == {"a": "1", "b": "2"}
    finally:
        obj.destroy()
