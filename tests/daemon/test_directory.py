"""The member directory: names to addresses, config first, replicated members override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.config import Config, load_config
from daemon.directory import Directory
from daemon.errors import ApiError
from daemon.state import ReplicatedState
from tests.cluster_harness import RAFT_PASSWORD, daemon_free_env


class LeaderAt:
    """Only what Directory asks Raft: the leader's address (None without a leader)."""

    def __init__(self, address: str | None) -> None:
        self.address = address

    def leader_address(self) -> str | None:
        return self.address


def config(tmp_path: Path) -> Config:
    path = tmp_path / "daemon-config.json"
    body = {
        "nodeName": "unrdf-daemon-0",
        "dataDir": str(tmp_path / "data"),
        "http": {"host": "127.0.0.1", "port": 8080},
        "raft": {"bindAddress": "127.0.0.1:8180"},
        "peers": [
            {"name": "unrdf-daemon-1", "raftAddress": "127.0.0.1:8181", "httpUrl": "http://b:8081"}
        ],
    }
    path.write_text(json.dumps(body))
    return load_config(str(path), daemon_free_env(RAFT_PASSWORD=RAFT_PASSWORD))


def test_the_directory_names_this_node_and_its_configured_peers(tmp_path: Path) -> None:
    directory = Directory(config(tmp_path), ReplicatedState(), LeaderAt("127.0.0.1:8181"))
    entries = directory.entries()
    assert set(entries) == {"unrdf-daemon-0", "unrdf-daemon-1"}
    assert entries["unrdf-daemon-0"]["raftAddress"] == "127.0.0.1:8180"
    assert directory.leader_name() == "unrdf-daemon-1"
    assert directory.url_of("unrdf-daemon-1") == "http://b:8081"


def test_a_replicated_member_overrides_the_config_and_adds_to_it(tmp_path: Path) -> None:
    state = ReplicatedState()
    state.set_member("w1", "unrdf-daemon-1", "10.0.0.2:8181", "http://moved:8081", _doApply=True)
    state.set_member("w2", "unrdf-daemon-3", "10.0.0.4:8183", "http://d:8083", _doApply=True)
    directory = Directory(config(tmp_path), state, LeaderAt("10.0.0.4:8183"))
    assert directory.url_of("unrdf-daemon-1") == "http://moved:8081"
    assert directory.name_of("10.0.0.2:8181") == "unrdf-daemon-1"
    assert directory.leader_name() == "unrdf-daemon-3"


def test_an_unknown_address_is_shown_as_itself_and_no_leader_is_none(tmp_path: Path) -> None:
    directory = Directory(config(tmp_path), ReplicatedState(), LeaderAt(None))
    assert directory.name_of("192.0.2.1:9") == "192.0.2.1:9"
    assert directory.leader_name() is None


def test_an_unknown_name_is_a_404_naming_the_members(tmp_path: Path) -> None:
    directory = Directory(config(tmp_path), ReplicatedState(), LeaderAt(None))
    with pytest.raises(ApiError) as refused:
        directory.url_of("nobody")
    assert refused.value.status == 404
    assert "known: unrdf-daemon-0, unrdf-daemon-1" in refused.value.message
