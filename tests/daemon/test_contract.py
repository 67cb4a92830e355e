"""The daemon's wire contract: parsing of its health answers, quorum arithmetic, ids, times.

The last test checks real answers from a running cluster against the parsers, so the
contract cannot drift from what the daemon sends.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from daemon import build, contract
from daemon.contract import (
    ContractError,
    fault_tolerance,
    format_time,
    parse_cluster_view,
    parse_node_health,
    parse_time,
    quorum_size,
    valid_operation_id,
)
from tests.cluster_harness import ROOT, Cluster, wait_for

API_DOC = (ROOT / "docs" / "daemon-api.md").read_text()


def documented(key: str) -> bool:
    """Named as a JSON key ("key") or in code (`key`) in docs/daemon-api.md."""
    return f'"{key}"' in API_DOC or f"`{key}`" in API_DOC


LEADER_NODE: dict[str, Any] = {
    "name": "unrdf-daemon-0",
    "role": "leader",
    "term": 4,
    "commitIndex": 120,
    "appliedIndex": 120,
    "lastLogIndex": 121,
    "digest": "9f2c00aa",
    "draining": False,
    "version": "0.1.0",
    "codeVersion": 0,
    "maxCodeVersion": 1,
    "build": {"release": "r-1", "package": "0.1.0+r.1", "commit": "0a1b2c", "dirty": False},
    "leader": "unrdf-daemon-0",
    "hasQuorum": True,
    "ready": True,
    "raftReady": True,
    "httpUrl": "http://127.0.0.1:8080",
    "raftAddress": "127.0.0.1:8180",
    "uptimeSeconds": 12.5,
    "disk": {
        "dataDirBytes": 4096,
        "fsUsedBytes": 10,
        "fsTotalBytes": 100,
        "fsUsage": 0.1,
    },
    "followers": {
        "unrdf-daemon-1": {"matchIndex": 120, "lagEntries": 1, "lagMs": 0.4},
        "unrdf-daemon-2": {"matchIndex": None, "lagEntries": None, "lagMs": None},
    },
}

CLUSTER: dict[str, Any] = {
    "clusterSize": 3,
    "leader": "unrdf-daemon-0",
    "replicated": False,
    "replicationLag": 0.4,
    "term": 4,
    "commitIndex": 120,
    "hasQuorum": True,
    "quorumSize": 2,
    "reachableNodes": 2,
    "faultTolerance": 0,
    "node": "unrdf-daemon-1",
    "nodes": [
        {
            "name": "unrdf-daemon-0",
            "role": "leader",
            "reachable": True,
            "draining": False,
            "version": "0.1.0",
            "term": 4,
            "appliedIndex": 120,
            "commitIndex": 120,
            "digest": "9f2c00aa",
            "build": {"release": "r-1", "package": "0.1.0+r.1", "commit": "0a1b", "dirty": True},
            "codeVersion": 0,
            "maxCodeVersion": 1,
            "httpUrl": "http://127.0.0.1:8080",
            "raftAddress": "127.0.0.1:8180",
            "matchIndex": 121,
            "lagEntries": 0,
            "lagMs": 0.0,
        },
        {
            "name": "unrdf-daemon-2",
            "role": "unknown",
            "reachable": False,
            "draining": False,
            "version": None,
            "term": None,
            "appliedIndex": None,
            "commitIndex": None,
            "digest": None,
            "httpUrl": "http://127.0.0.1:8082",
            "raftAddress": "127.0.0.1:8182",
            "matchIndex": None,
            "lagEntries": None,
            "lagMs": None,
        },
    ],
}


def test_quorum_is_a_strict_majority() -> None:
    assert [quorum_size(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]


def test_fault_tolerance_counts_reachable_members_beyond_quorum() -> None:
    assert fault_tolerance(3, 3) == 1
    assert fault_tolerance(5, 5) == 2
    assert fault_tolerance(5, 4) == 1
    assert fault_tolerance(3, 2) == 0
    assert fault_tolerance(3, 1) == 0  # never negative, even without quorum


@pytest.mark.parametrize("op_id", ["a", "test-op", "A.b_c-9", "0" * 128])
def test_operation_ids_within_the_pattern_are_valid(op_id: str) -> None:
    assert valid_operation_id(op_id)


@pytest.mark.parametrize("op_id", ["", "-lead", ".x", "a/b", "a b", "0" * 129, "é", None, 7])
def test_operation_ids_outside_the_pattern_are_refused(op_id: object) -> None:
    assert not valid_operation_id(op_id)


def test_the_operation_id_bound_matches_the_pattern() -> None:
    assert valid_operation_id("x" * contract.OPERATION_ID_MAX_LENGTH)
    assert not valid_operation_id("x" * (contract.OPERATION_ID_MAX_LENGTH + 1))


def test_times_are_utc_with_milliseconds_and_a_z() -> None:
    assert format_time(0) == "1970-01-01T00:00:00.000Z"
    assert format_time(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


def test_a_formatted_time_parses_back_to_the_same_instant() -> None:
    parsed = parse_time(format_time(1_700_000_000.5))
    assert parsed == datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=UTC)


def test_a_time_without_an_offset_is_read_as_utc() -> None:
    assert parse_time("2024-01-02T03:04:05").tzinfo == UTC
    assert parse_time("2024-01-02T05:04:05+02:00").hour == 3


@pytest.mark.parametrize("text", ["yesterday", "", None, 5])
def test_a_malformed_time_is_a_contract_error(text: object) -> None:
    with pytest.raises(ContractError):
        parse_time(text)


def test_a_leaders_node_health_parses_with_its_followers_and_disk() -> None:
    health = parse_node_health(LEADER_NODE)
    assert health.is_leader and health.leader == "unrdf-daemon-0"
    assert health.commit_index == 120 and health.last_log_index == 121
    assert health.disk is not None and health.disk.fs_usage == 0.1
    assert health.followers["unrdf-daemon-1"].lag_ms == 0.4
    assert health.followers["unrdf-daemon-2"].match_index is None


def test_a_followers_node_health_without_optional_fields_parses() -> None:
    optional = ("followers", "disk", "codeVersion", "maxCodeVersion", "build")
    body = {k: v for k, v in LEADER_NODE.items() if k not in optional}
    body.update(role="follower", leader=None)
    health = parse_node_health(body)
    assert not health.is_leader and health.leader is None
    assert health.followers == {} and health.disk is None and health.code_version is None
    assert health.build is None and health.max_code_version is None


def test_a_node_health_carries_its_build_and_code_versions() -> None:
    health = parse_node_health(LEADER_NODE)
    assert health.build == contract.BuildInfo("r-1", "0.1.0+r.1", "0a1b2c", False)
    assert (health.code_version, health.max_code_version) == (0, 1)


def test_a_cluster_view_says_which_members_run_which_release() -> None:
    view = parse_cluster_view(CLUSTER)
    leader = view.by_name["unrdf-daemon-0"]
    assert leader.build is not None and leader.build.dirty
    assert (leader.code_version, leader.max_code_version) == (0, 1)
    assert view.by_name["unrdf-daemon-2"].build is None  # unreachable: unknown, not absent
    assert view.releases == {"r-1": ["unrdf-daemon-0"]}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("term", "4", "'term' must be an integer (got str)"),
        ("term", True, "'term' must be an integer (got bool)"),
        ("draining", None, "'draining' must be true or false (got null)"),
        ("role", "boss", "unknown role 'boss'"),
        ("disk", {"fsUsage": 0.1}, "'dataDirBytes' must be an integer (missing)"),
        ("followers", [], "followers must be a JSON object"),
        ("build", {"release": "r"}, "'package' must be a string (missing)"),
        ("build", "r-1", "build must be a JSON object"),
        ("maxCodeVersion", "1", "'maxCodeVersion' must be an integer (got str)"),
    ],
)
def test_a_malformed_node_health_names_the_field(key: str, value: Any, message: str) -> None:
    body = {**LEADER_NODE, key: value}
    with pytest.raises(ContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_node_health(body)


def test_a_node_health_missing_a_field_is_a_contract_error() -> None:
    body = {k: v for k, v in LEADER_NODE.items() if k != "commitIndex"}
    with pytest.raises(ContractError, match="'commitIndex' must be an integer \\(missing\\)"):
        parse_node_health(body)


@pytest.mark.parametrize("body", [None, [], "ok", 3])
def test_an_answer_that_is_not_an_object_is_a_contract_error(body: object) -> None:
    with pytest.raises(ContractError, match="must be a JSON object"):
        parse_node_health(body)
    with pytest.raises(ContractError, match="must be a JSON object"):
        parse_cluster_view(body)


def test_a_cluster_view_parses_with_an_unreachable_member() -> None:
    view = parse_cluster_view(CLUSTER)
    assert view.leader == "unrdf-daemon-0" and view.node == "unrdf-daemon-1"
    assert (view.cluster_size, view.quorum_size, view.reachable_nodes) == (3, 2, 2)
    assert view.fault_tolerance == 0 and view.replication_lag_ms == 0.4
    down = view.member("unrdf-daemon-2")
    assert down is not None and not down.reachable and down.role == "unknown"
    assert down.term is None and down.lag_ms is None
    assert set(view.by_name) == {"unrdf-daemon-0", "unrdf-daemon-2"}
    assert view.member("nobody") is None


def test_a_cluster_view_without_derived_counts_derives_them() -> None:
    body = {k: v for k, v in CLUSTER.items() if k not in ("quorumSize", "reachableNodes")}
    del body["faultTolerance"]
    view = parse_cluster_view(body)
    assert (view.quorum_size, view.reachable_nodes, view.fault_tolerance) == (2, 1, 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nodes": {}}, "'nodes' must be a list"),
        ({"clusterSize": -1}, "'clusterSize' must not be negative"),
        ({"replicationLag": "fast"}, "'replicationLag' must be a number"),
        ({"replicationLag": float("nan")}, "'replicationLag' must be a number"),
        ({"leader": 0}, "'leader' must be a string or null"),
        ({"node": None}, "'node' must be a string"),
    ],
)
def test_a_malformed_cluster_view_names_the_field(change: dict, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        parse_cluster_view({**CLUSTER, **change})


def test_a_malformed_member_names_its_position() -> None:
    body = copy.deepcopy(CLUSTER)
    body["nodes"][1]["reachable"] = "no"
    with pytest.raises(ContractError, match=r"nodes\[1\]: 'reachable' must be true or false"):
        parse_cluster_view(body)
    body["nodes"][1] = "unrdf-daemon-2"
    with pytest.raises(ContractError, match=r"nodes\[1\] must be a JSON object"):
        parse_cluster_view(body)


def test_a_member_listed_twice_is_a_contract_error() -> None:
    body = copy.deepcopy(CLUSTER)
    body["nodes"][1] = body["nodes"][0]
    with pytest.raises(ContractError, match="appears twice"):
        parse_cluster_view(body)


def test_contract_errors_are_value_errors_with_one_line() -> None:
    body = {**LEADER_NODE, "name": "x\ny"}
    assert parse_node_health(body).name == "x\ny"  # values are data, not messages
    with pytest.raises(ValueError) as caught:
        parse_node_health({**LEADER_NODE, "role": "a\nb"})
    assert "\n" not in str(caught.value)


def test_the_api_doc_names_every_route_and_metrics_window() -> None:
    source = (ROOT / "daemon" / "api.py").read_text()
    paths = set(re.findall(r'Route\("([^"]+)"', source))
    assert len(paths) > 15
    for path in paths:
        shown = re.sub(
            r"\{(\w+)\}", lambda m: "{" + ("id" if m[1] == "op_id" else m[1]) + "}", path
        )
        assert f"`{shown}" in API_DOC or f" {shown}`" in API_DOC or shown in API_DOC, path
    for window in contract.METRICS_WINDOWS:
        assert f"`{window}`" in API_DOC, window


@pytest.mark.cluster
def test_real_health_answers_from_leader_and_follower_parse(cluster: Cluster) -> None:
    leader = cluster.leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    names = {n.name for n in cluster.nodes}

    def leader_sees_all_followers() -> Any:
        health = parse_node_health(cluster.get(leader, "/health/node").json())
        progress = health.followers.values()
        return health if all(p.match_index is not None for p in progress) else None

    led = wait_for(leader_sees_all_followers, what="the leader's progress for every follower")
    assert led.is_leader and led.name == leader.name
    assert set(led.followers) == names - {leader.name}
    assert led.disk is not None and led.disk.data_dir_bytes > 0
    assert led.code_version == 0 and led.ready
    assert led.max_code_version == build.current().max_code_version
    assert led.build is not None and led.build.release == "dev"
    assert led.build.commit == build.current().commit

    leader_body = cluster.get(leader, "/health/node").json()
    undocumented = [k for k in (*leader_body, *leader_body["disk"]) if not documented(k)]
    assert undocumented == [], "fields /health/node sends that docs/daemon-api.md does not name"

    followed = parse_node_health(cluster.get(follower, "/health/node").json())
    assert followed.role == "follower" and followed.leader == leader.name
    assert followed.followers == {}

    for asked in (leader, follower):
        body = cluster.get(asked, "/health/cluster").json()
        fields = [*body, *(k for n in body["nodes"] for k in n)]
        assert [k for k in fields if not documented(k)] == []
        view = parse_cluster_view(body)
        assert view.node == asked.name and view.leader == leader.name
        assert {m.name for m in view.members} == names
        assert (view.cluster_size, view.quorum_size, view.reachable_nodes) == (3, 2, 3)
        assert view.fault_tolerance == 1 and view.has_quorum
        assert all(m.http_url and m.raft_address for m in view.members)
        assert view.releases == {"dev": sorted(names)}
        assert all(m.code_version == 0 and m.max_code_version is not None for m in view.members)

    # An unreachable member is part of the contract too: its fields go null.
    other = next(n for n in cluster.nodes if n not in (leader, follower))
    cluster.kill(other)
    view = wait_for(
        lambda: (
            v
            if not (v := parse_cluster_view(cluster.get(leader, "/health/cluster").json()))
            .by_name[other.name]
            .reachable
            else None
        ),
        what=f"{other.name} seen as unreachable",
    )
    down = view.by_name[other.name]
    assert (
        down.role == "unknown" and down.term is None and down.version is None and down.build is None
    )
    assert view.reachable_nodes == 2 and view.fault_tolerance == 0
