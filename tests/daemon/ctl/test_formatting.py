"""daemonctl's tables: alignment, and the status view built from /health/cluster."""

from __future__ import annotations

import pytest

from daemon.contract import ContractError
from daemon.ctl.formatting import format_members, format_status, format_table
from tests.daemon.ctl.samples import CLUSTER


def test_format_table_aligns_columns() -> None:
    table = format_table(
        ["NAME", "N", "OK", "LAG"],
        [["a", 5, True, 0.25], ["longer-name", 1234, False, None]],
    )
    assert table.splitlines() == [
        "NAME            N  OK    LAG",
        "a               5  yes  0.25",
        "longer-name  1234  no      -",
    ]
    assert all(line == line.rstrip() for line in table.splitlines())


def test_format_table_numeric_column_with_unknowns_aligns_right() -> None:
    table = format_table(["A", "LAG(ms)"], [["x", 1.5], ["y", None], ["z", 120.25]])
    assert table.splitlines()[1:] == ["x      1.5", "y        -", "z   120.25"]


def test_format_table_headers_only() -> None:
    assert format_table(["A", "B"], []) == "A  B"


def test_status_table_from_health_cluster() -> None:
    text = format_status(CLUSTER)
    lines = text.splitlines()
    header = lines[0].split()
    assert header == [
        "NAME",
        "ROLE",
        "REACHABLE",
        "TERM",
        "COMMIT",
        "APPLIED",
        "LAG(entries)",
        "LAG(ms)",
        "DRAINING",
        "VERSION",
    ]
    assert lines[1].startswith("* unrdf-daemon-0")
    assert lines[1].split()[2:] == ["leader", "yes", "4", "1234", "1234", "0", "0", "no", "0.1.0"]
    assert lines[2].startswith("  unrdf-daemon-1")
    follower = ["follower", "yes", "4", "1232", "1232", "2", "0.8", "yes", "0.1.0"]
    assert lines[2].split()[1:] == follower
    # An unreachable member shows unknowns, not the answering node's term.
    assert lines[3].split()[1:] == ["unknown", "no", "-", "-", "-", "-", "-", "no", "-"]
    footer = text.split("\n\n", 1)[1]
    assert "3 members" in footer
    assert "2 reachable" in footer
    assert "leader unrdf-daemon-0" in footer
    assert "quorum yes" in footer
    assert "cannot lose any node" in footer
    assert "answered by unrdf-daemon-1" in footer


@pytest.mark.parametrize(
    ("tolerance", "text"),
    [(1, "can lose 1 node"), (2, "can lose 2 nodes"), (0, "cannot lose any node")],
)
def test_status_footer_fault_tolerance(tolerance: int, text: str) -> None:
    assert text in format_status({**CLUSTER, "faultTolerance": tolerance})


def test_status_footer_without_quorum_or_leader() -> None:
    footer = format_status({**CLUSTER, "hasQuorum": False, "leader": None})
    assert "quorum NO" in footer
    assert "leader NONE" in footer
    assert "* " not in footer


def test_status_footer_derives_fault_tolerance_when_absent() -> None:
    cluster = {k: v for k, v in CLUSTER.items() if k != "faultTolerance"}
    all_up = {**cluster, "nodes": [{**n, "reachable": True} for n in CLUSTER["nodes"]]}
    assert "can lose 1 node" in format_status(all_up)


def test_status_footer_says_how_many_members_quorum_needs() -> None:
    assert "quorum yes (needs 2)" in format_status(CLUSTER)
    five = {**CLUSTER, "clusterSize": 5, "quorumSize": 3}
    assert "(needs 3)" in format_status(five)


def test_status_of_an_answer_that_breaks_the_contract_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="'hasQuorum' must be true or false"):
        format_status({**CLUSTER, "hasQuorum": "yes"})


def test_members_table_from_the_members_endpoint() -> None:
    members = [
        {
            "name": "unrdf-daemon-0",
            "role": "leader",
            "reachable": True,
            "raftAddress": "h:8081",
            "httpUrl": "http://h:8080",
        }
    ]
    lines = format_members(members).splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "REACHABLE", "RAFT", "ADDRESS", "HTTP", "URL"]
    assert lines[1].split() == ["unrdf-daemon-0", "leader", "yes", "h:8081", "http://h:8080"]


@pytest.mark.parametrize("body", [{"members": []}, {"unrdf-daemon-0": {}}, [1, 2], None])
def test_members_answer_that_is_not_a_list_of_objects_is_refused(body: object) -> None:
    with pytest.raises(ContractError, match="must be a list of JSON objects"):
        format_members(body)
