"""Bearer-token roles on a real cluster: who may call what (docs/daemon-api.md, "Auth").

Mutating endpoints need `operate` (operations, execute) or `admin` (/admin/*,
/shutdown, members): 401 without a token, 403 with a lower role. Health, metrics and
queue GETs are anonymous by default; definitions and results need a read token. With `auth.anonymousRead: false` every GET needs a token except the
three Kubernetes probes (/health/startup, /health/live, /health/ready) and the `/`
banner; /metrics then needs a read token too, so a Prometheus scrape job must send
one (`authorization: {credentials: <read token>}`). `auth.disabled: true` opens all.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.cluster_harness import (
    ADMIN_TOKEN,
    OPERATE_TOKEN,
    READ_TOKEN,
    Cluster,
    Node,
    wait_for,
)

pytestmark = pytest.mark.cluster

OP = {"id": "auth-op", "name": "Auth op", "handler": {"kind": "noop"}}

# (method, path, role needed). Bodies are chosen so that an authorised call is
# cheap and leaves the cluster as it was.
OPERATE_ENDPOINTS = [
    ("POST", "/operations"),
    ("POST", "/execute/auth-op"),
    ("DELETE", "/operations/auth-op"),
]
ADMIN_ENDPOINTS = [
    ("POST", "/admin/snapshot"),
    ("POST", "/admin/drain"),
    ("POST", "/admin/undrain"),
    ("POST", "/admin/transfer-leader"),
    ("POST", "/admin/members"),
    ("DELETE", "/admin/members/unrdf-daemon-9"),
    ("POST", "/shutdown"),
]
PROBES = ["/health/startup", "/health/live", "/health/ready"]
HEALTH_GETS = ["/health/node", "/health/cluster", "/metrics", "/metrics/24h", "/queue"]
GUARDED_GETS = [
    "/health/node",
    "/health/cluster",
    "/watch",
    "/operations",
    "/operations/auth-op",
    "/operations/auth-op/history",
    "/executions",
    "/metrics",
    "/metrics/24h",
    "/queue",
    "/admin/members",
]


def call(node: Node, method: str, path: str, token: str | None = None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, node.url + path, headers=headers, timeout=10, **kwargs)


def assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert "\n" not in body["error"]
    if status == 401:
        assert response.headers.get("www-authenticate") == "Bearer"


def _cluster(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp(name), **kwargs)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture(scope="module")
def default_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from _cluster(tmp_path_factory, "auth-default", size=3)


@pytest.fixture(scope="module")
def closed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from _cluster(
        tmp_path_factory, "auth-closed", size=3, overrides={"auth": {"anonymousRead": False}}
    )


@pytest.fixture
def op_defined(default_cluster: Cluster) -> Cluster:
    response = default_cluster.define(default_cluster.nodes[0], OP)
    assert response.status_code in (200, 201), response.text
    default_cluster.wait_converged()
    return default_cluster


# ---- the default configuration -------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), OPERATE_ENDPOINTS + ADMIN_ENDPOINTS)
def test_every_mutating_endpoint_refuses_an_anonymous_caller_with_401(
    op_defined: Cluster, method: str, path: str
) -> None:
    for node in op_defined.nodes:
        assert_refused(call(node, method, path, json=OP), 401)
    assert all(n.alive for n in op_defined.nodes)
    assert op_defined.get(op_defined.nodes[0], "/operations/auth-op").status_code == 200


@pytest.mark.parametrize(("method", "path"), OPERATE_ENDPOINTS + ADMIN_ENDPOINTS)
def test_an_unknown_token_is_refused_with_401_on_every_mutating_endpoint(
    op_defined: Cluster, method: str, path: str
) -> None:
    response = call(op_defined.nodes[1], method, path, "not-a-known-token-000000", json=OP)
    assert_refused(response, 401)
    assert "invalid" in response.json()["error"]


@pytest.mark.parametrize(("method", "path"), OPERATE_ENDPOINTS)
def test_a_read_token_may_not_define_execute_or_delete_operations(
    op_defined: Cluster, method: str, path: str
) -> None:
    response = call(op_defined.nodes[0], method, path, READ_TOKEN, json=OP)
    assert_refused(response, 403)
    assert "'read'" in response.json()["error"] and "'operate'" in response.json()["error"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ENDPOINTS)
@pytest.mark.parametrize("token", [READ_TOKEN, OPERATE_TOKEN], ids=["read", "operate"])
def test_read_and_operate_tokens_may_not_call_admin_endpoints(
    op_defined: Cluster, method: str, path: str, token: str
) -> None:
    for node in op_defined.nodes:
        response = call(node, method, path, token, json={})
        assert_refused(response, 403)
        assert "'admin'" in response.json()["error"]
    assert all(n.alive for n in op_defined.nodes)
    for node in op_defined.nodes:
        assert op_defined.get(node, "/health/node").json()["draining"] is False


def test_an_operate_token_defines_executes_and_deletes_an_operation(
    default_cluster: Cluster,
) -> None:
    node = default_cluster.nodes[1]
    op = {**OP, "id": "operate-op"}
    assert call(node, "POST", "/operations", OPERATE_TOKEN, json=op).status_code == 201
    executed = call(node, "POST", "/execute/operate-op", OPERATE_TOKEN)
    assert executed.status_code == 200, executed.text
    assert executed.json()["status"] == "success"
    deleted = call(node, "DELETE", "/operations/operate-op", OPERATE_TOKEN)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": "operate-op"}


def test_an_admin_token_also_has_the_operate_role(default_cluster: Cluster) -> None:
    node = default_cluster.nodes[2]
    op = {**OP, "id": "admin-op"}
    assert call(node, "POST", "/operations", ADMIN_TOKEN, json=op).status_code == 201
    assert call(node, "POST", "/execute/admin-op", ADMIN_TOKEN).status_code == 200
    assert call(node, "DELETE", "/operations/admin-op", ADMIN_TOKEN).status_code == 200


def test_the_bearer_scheme_is_matched_case_insensitively(default_cluster: Cluster) -> None:
    node = default_cluster.nodes[0]
    response = call(
        node,
        "POST",
        "/operations",
        json={**OP, "id": "scheme-op"},
        headers={"Authorization": f"bearer {OPERATE_TOKEN}"},
    )
    assert response.status_code == 201, response.text


def test_an_admin_token_runs_every_admin_endpoint(default_cluster: Cluster) -> None:
    leader = default_cluster.leader()
    follower = next(n for n in default_cluster.nodes if n is not leader)

    snapshot = call(follower, "POST", "/admin/snapshot", ADMIN_TOKEN)
    assert snapshot.status_code == 200, snapshot.text
    assert "journalBytesAfter" in snapshot.json()

    drained = call(follower, "POST", "/admin/drain", ADMIN_TOKEN)
    assert drained.status_code == 200, drained.text
    assert drained.json()["draining"] is True
    undrained = call(follower, "POST", "/admin/undrain", ADMIN_TOKEN)
    assert undrained.status_code == 200, undrained.text
    assert undrained.json()["draining"] is False

    # Through a follower: the request is forwarded to the leader with the caller's token.
    transfer = call(
        follower, "POST", "/admin/transfer-leader", ADMIN_TOKEN, json={"target": leader.name}
    )
    assert transfer.status_code == 200, transfer.text
    assert transfer.json()["leader"] == leader.name

    # Authorised, so the body is validated (400) rather than the caller refused.
    members = call(follower, "POST", "/admin/members", ADMIN_TOKEN, json={"name": "x"})
    assert members.status_code == 400, members.text
    removal = call(follower, "DELETE", "/admin/members/unrdf-daemon-9", ADMIN_TOKEN)
    assert removal.status_code == 404, removal.text


@pytest.mark.parametrize("path", PROBES + HEALTH_GETS + ["/"])
def test_health_and_metrics_are_open_to_anonymous_callers_by_default(
    op_defined: Cluster, path: str
) -> None:
    response = op_defined.get(op_defined.nodes[0], path, token=None)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", sorted(set(GUARDED_GETS) - set(HEALTH_GETS)))
def test_definitions_and_results_need_a_read_token_by_default(
    op_defined: Cluster, path: str
) -> None:
    assert_refused(op_defined.get(op_defined.nodes[0], path, token=None), 401)
    assert op_defined.get(op_defined.nodes[0], path).status_code == 200


def test_anonymous_read_all_restores_the_old_open_reads(make_cluster) -> None:
    cluster = make_cluster(size=1, overrides={"auth": {"anonymousRead": "all"}})
    assert cluster.get(cluster.nodes[0], "/operations", token=None).status_code == 200


def test_prometheus_can_scrape_metrics_anonymously_by_default(default_cluster: Cluster) -> None:
    response = default_cluster.get(
        default_cluster.nodes[0], "/metrics", headers={"Accept": "text/plain"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


# ---- auth.anonymousRead: false ---------------------------------------------------------


@pytest.mark.parametrize("path", GUARDED_GETS)
def test_without_anonymous_read_an_anonymous_get_is_refused_with_401(
    closed_cluster: Cluster, path: str
) -> None:
    for node in closed_cluster.nodes:
        assert_refused(closed_cluster.get(node, path, token=None), 401)


@pytest.mark.parametrize("path", ["/operations", "/metrics", "/health/cluster", "/queue"])
def test_without_anonymous_read_a_read_token_still_reads(
    closed_cluster: Cluster, path: str
) -> None:
    for token in (READ_TOKEN, OPERATE_TOKEN, ADMIN_TOKEN):
        response = closed_cluster.get(
            closed_cluster.nodes[0], path, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", PROBES)
def test_without_anonymous_read_kubernetes_probes_stay_open(
    closed_cluster: Cluster, path: str
) -> None:
    for node in closed_cluster.nodes:
        response = closed_cluster.get(node, path, token=None)
        assert response.status_code == 200, response.text


def test_without_anonymous_read_the_root_banner_stays_open(closed_cluster: Cluster) -> None:
    # `curl -I https://localhost:8443` in the runbook must keep answering.
    response = httpx.head(closed_cluster.nodes[0].url + "/", timeout=5)
    assert response.status_code == 200


def test_without_anonymous_read_prometheus_scrapes_with_a_read_token(
    closed_cluster: Cluster,
) -> None:
    node = closed_cluster.nodes[0]
    anonymous = closed_cluster.get(node, "/metrics", token=None, headers={"Accept": "text/plain"})
    assert_refused(anonymous, 401)
    scraped = closed_cluster.get(
        node, "/metrics", headers={"Accept": "text/plain", "Authorization": f"Bearer {READ_TOKEN}"}
    )
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")


def test_without_anonymous_read_nodes_still_see_each_other_in_the_cluster_view(
    closed_cluster: Cluster,
) -> None:
    # Nodes read each other's /health/node with a token derived from the Raft secret.
    def all_reachable() -> dict | None:
        view = closed_cluster.get(
            closed_cluster.nodes[1],
            "/health/cluster",
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
        ).json()
        return view if all(n["reachable"] for n in view["nodes"]) else None

    view = wait_for(all_reachable, what="every node reachable in the cluster view")
    assert view["clusterSize"] == 3
    assert view["leader"] is not None


def test_without_anonymous_read_an_operate_token_still_defines_and_executes(
    closed_cluster: Cluster,
) -> None:
    node = closed_cluster.nodes[2]
    assert call(node, "POST", "/operations", OPERATE_TOKEN, json=OP).status_code in (200, 201)
    assert call(node, "POST", "/execute/auth-op", OPERATE_TOKEN).status_code == 200
    assert_refused(call(node, "POST", "/execute/auth-op"), 401)


# ---- /shutdown ---------------------------------------------------------------------------


def test_only_an_admin_token_shuts_a_node_down(make_cluster) -> None:
    cluster = make_cluster(size=1)
    node = cluster.nodes[0]
    assert_refused(call(node, "POST", "/shutdown"), 401)
    assert_refused(call(node, "POST", "/shutdown", READ_TOKEN), 403)
    assert_refused(call(node, "POST", "/shutdown", OPERATE_TOKEN), 403)
    assert cluster.get(node, "/health/live").status_code == 200

    response = call(node, "POST", "/shutdown", ADMIN_TOKEN)
    assert response.status_code == 202, response.text
    assert node.proc is not None
    assert node.proc.wait(timeout=30) == 0


# ---- auth.disabled: true ---------------------------------------------------------------------


def test_with_auth_disabled_every_endpoint_is_open_to_anonymous_callers(make_cluster) -> None:
    cluster = make_cluster(size=1, overrides={"auth": {"disabled": True, "anonymousRead": False}})
    node = cluster.nodes[0]
    for path in PROBES + GUARDED_GETS:
        response = call(node, "GET", path)
        assert response.status_code in (200, 404), (path, response.text)
        assert response.status_code != 401
    assert call(node, "POST", "/operations", json=OP).status_code == 201
    assert call(node, "GET", "/operations/auth-op").status_code == 200
    assert call(node, "POST", "/execute/auth-op").status_code == 200
    assert call(node, "DELETE", "/operations/auth-op").status_code == 200
    assert call(node, "POST", "/admin/snapshot").status_code == 200
    assert call(node, "POST", "/admin/drain").json()["draining"] is True
    assert call(node, "POST", "/admin/undrain").json()["draining"] is False
    transfer = call(node, "POST", "/admin/transfer-leader", json={"target": node.name})
    assert transfer.status_code == 200, transfer.text
    assert call(node, "POST", "/admin/members", json={}).status_code == 400
    assert call(node, "POST", "/shutdown").status_code == 202
    assert node.proc is not None
    assert node.proc.wait(timeout=30) == 0
