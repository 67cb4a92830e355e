"""POST /admin/code-version on a cluster whose builds all stop at code version 0.

Accepting a switch needs a second release; tests/daemon/test_mixed_versions.py does that."""

from __future__ import annotations

import pytest

from daemon import build
from daemon.contract import ContractError, parse_code_version
from tests.cluster_harness import OPERATE_TOKEN, READ_TOKEN, Cluster

pytestmark = pytest.mark.cluster


def test_a_switch_beyond_what_the_members_support_is_refused_naming_them(
    cluster: Cluster,
) -> None:
    assert build.current().max_code_version == 0  # else this test needs a higher version
    follower = next(n for n in cluster.nodes if n is not cluster.leader())
    response = cluster.post(follower, "/admin/code-version", json={"version": 1})
    assert response.status_code == 409, response.text
    body = response.json()
    assert "maxCodeVersion >= 1" in body["error"]
    for node in cluster.nodes:
        assert f"{node.name} runs dev with maxCodeVersion 0" in body["error"]
    assert body["members"] == {n.name: 0 for n in cluster.nodes}
    assert all(cluster.get(n, "/health/node").json()["codeVersion"] == 0 for n in cluster.nodes)


def test_asking_for_the_enabled_version_changes_nothing_and_says_rollback_is_safe(
    cluster: Cluster,
) -> None:
    response = cluster.post(cluster.nodes[0], "/admin/code-version", json={"version": 0})
    assert response.status_code == 200, response.text
    body = response.json()
    answer = parse_code_version(body)
    assert answer.changed is False and answer.code_version == 0 and answer.rollback_safe
    assert answer.members == {n.name: 0 for n in cluster.nodes}
    shown = cluster.get(
        cluster.nodes[1], "/admin/code-version", headers={"Authorization": f"Bearer {READ_TOKEN}"}
    ).json()
    assert shown["codeVersion"] == 0 and shown["maxCodeVersion"] == 0


BAD_BODIES = [
    ({}, "body must be"),
    ({"version": "1"}, "must be an integer"),
    ({"version": True}, "must be an integer"),
    ({"version": -1}, "between 0 and"),
    ({"version": 1, "force": True}, "body must be"),
    ([1], "body must be"),
]


def test_a_bad_code_version_request_is_a_clear_400(cluster: Cluster) -> None:
    # One cluster for every case: each start costs seconds.
    for body, message in BAD_BODIES:
        response = cluster.post(cluster.nodes[0], "/admin/code-version", json=body)
        assert response.status_code == 400, (body, response.text)
        assert message in response.json()["error"], body


def test_switching_the_code_version_needs_the_admin_token(cluster: Cluster) -> None:
    response = cluster.post(
        cluster.nodes[0], "/admin/code-version", token=OPERATE_TOKEN, json={"version": 0}
    )
    assert response.status_code == 403


def test_a_malformed_code_version_answer_names_the_field() -> None:
    good = {"node": "n", "codeVersion": 1, "maxCodeVersion": 1, "rollbackSafe": False,
            "note": "x"}  # fmt: skip
    assert parse_code_version(good).members == {}
    with pytest.raises(ContractError, match="'codeVersion' must be an integer"):
        parse_code_version({**good, "codeVersion": "1"})
    with pytest.raises(ContractError, match="members must be a JSON object"):
        parse_code_version({**good, "members": []})
