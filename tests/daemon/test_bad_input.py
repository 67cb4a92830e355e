"""Bad input never hurts the cluster (docs/daemon-api.md, "Errors").

Every malformed, mistyped, oversized or hostile request gets a 4xx with a one-line
JSON `error`, never a 500; and afterwards the cluster still holds what it held and
still commits. Inputs that would make a replicated method raise, or poison the
replicated state for every reader, are refused before they reach Raft.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import httpx
import pytest

from tests.cluster_harness import ADMIN_TOKEN, READ_TOKEN, Cluster, Node, wait_for

pytestmark = pytest.mark.cluster

# One client for the module: a fresh httpx client per request (what the harness's
# helpers do) builds an SSL context each time, which costs ~50 ms a request.
# Reads carry the read token: definitions and results are not anonymous by default.
HTTP = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {READ_TOKEN}"})

KEEP = {"id": "keep-op", "name": "Keep", "handler": {"kind": "noop"}}
LIMIT = 1_048_576  # limits.maxBodyBytes default


class Kept:
    """The module's cluster and what must survive every test: an operation and its history."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        created = cluster.define(cluster.nodes[0], KEEP)
        assert created.status_code == 201, created.text
        self.definition = created.json()
        executed = cluster.post(cluster.nodes[1], "/execute/keep-op")
        assert executed.status_code == 200, executed.text
        self.record_id = executed.json()["id"]
        converged(cluster)

    def assert_intact(self) -> None:
        for node in self.cluster.nodes:
            assert node.alive, node.name
            op = get(node, "/operations/keep-op")
            assert op.status_code == 200, (node.name, op.text)
            assert op.json() == self.definition
            history = get(node, "/operations/keep-op/history")
            assert history.status_code == 200
            assert self.record_id in [r["id"] for r in history.json()]
            assert get(node, "/operations").status_code == 200
        converged(self.cluster)


def get(node: Node, path: str) -> httpx.Response:
    return HTTP.get(node.url + path)


def converged(cluster: Cluster) -> None:
    """Every node at the same applied index and digest (Cluster.wait_converged, pooled)."""

    def same() -> bool:
        views = [get(n, "/health/node").json() for n in cluster.nodes]
        return len({(v["appliedIndex"], v["digest"]) for v in views}) == 1

    wait_for(same, what="all nodes at the same index and digest")


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kept]:
    cluster = Cluster(tmp_path_factory.mktemp("bad-input"), size=3)
    try:
        cluster.start()
        yield Kept(cluster)
    finally:
        cluster.stop_all()


@pytest.fixture
def cluster(kept: Kept) -> Iterator[Cluster]:
    yield kept.cluster
    kept.assert_intact()


def send(
    node: Node,
    method: str,
    path: str,
    body: bytes | None = None,
    token: str | None = ADMIN_TOKEN,
    **kwargs,
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return HTTP.request(method, node.url + path, content=body, headers=headers, **kwargs)


def as_body(value: object) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def assert_error(response: httpx.Response, *statuses: int) -> str:
    """A 4xx from the expected set, with a JSON body whose `error` is one line."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert isinstance(message, str) and message.strip()
    assert "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message
    return message


# ---- POST /operations ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"id": "x",}',
        b"{'id': 'single-quotes'}",
        b"\xff\xfe\x00garbage",
        b'{"id": "nan", "handler": {"kind": "sleep", "ms": NaN}}',
        b'{"id": "inf", "handler": "x", "timeoutMs": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "deep", "handler": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b"   ",
        b"",
    ],
    ids=[
        "truncated",
        "trailing-comma",
        "single-quotes",
        "not-utf8",
        "NaN",
        "Infinity",
        "deeply-nested-array",
        "deeply-nested-field",
        "blank",
        "empty",
    ],
)
def test_malformed_json_is_a_400(cluster: Cluster, body: bytes) -> None:
    assert_error(send(cluster.nodes[0], "POST", "/operations", body), 400)


@pytest.mark.parametrize("value", [[], [KEEP], "keep-op", 42, 1.5, True, None])
def test_json_that_is_not_an_object_is_a_400(cluster: Cluster, value: object) -> None:
    message = assert_error(send(cluster.nodes[1], "POST", "/operations", as_body(value)), 400)
    assert "object" in message


def test_a_body_over_the_limit_is_a_413(cluster: Cluster) -> None:
    big = json.dumps({"id": "big", "handler": "x", "description": "x" * LIMIT}).encode()
    assert_error(send(cluster.nodes[0], "POST", "/operations", big), 413)


def test_a_chunked_body_over_the_limit_is_a_413(cluster: Cluster) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"id": "big", "handler": "x", "description": "'
        for _ in range(LIMIT // 65_536 + 2):
            yield b"x" * 65_536
        yield b'"}'

    response = HTTP.post(
        cluster.nodes[1].url + "/operations",
        content=chunks(),
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert_error(response, 413)


def test_a_body_just_under_the_limit_is_read_and_validated(cluster: Cluster) -> None:
    # The limit counts bytes; a big-but-allowed body reaches validation (description > 2000).
    body = json.dumps({"id": "almost", "handler": "x", "description": "x" * (LIMIT - 100)})
    assert len(body) < LIMIT
    message = assert_error(send(cluster.nodes[2], "POST", "/operations", body.encode()), 400)
    assert "description" in message


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({**KEEP, "id": "u1", "command": "rm -rf /"}, "command"),
        ({**KEEP, "id": "u2", "seq": 1}, "seq"),
        ({**KEEP, "id": "u3", "retries": {"max": 1, "jitter": 2}}, "jitter"),
        ({**KEEP, "id": "u4", "handler": {"kind": "noop", "code": "print(1)"}}, "code"),
        ({**KEEP, "id": "u5", "handler": {"kind": "log", "message": "m", "eval": True}}, "eval"),
    ],
    ids=["top-level", "record-field", "retries-field", "handler-field", "log-field"],
)
def test_unknown_fields_are_a_400_that_names_them(cluster: Cluster, body: dict, names: str) -> None:
    message = assert_error(send(cluster.nodes[0], "POST", "/operations", as_body(body)), 400)
    assert names in message
    assert get(cluster.nodes[0], f"/operations/{body['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": 7, "handler": "x"}, "id"),
        ({"id": "t1", "handler": "x", "timeoutMs": "1000"}, "timeoutMs"),
        ({"id": "t2", "handler": "x", "timeoutMs": True}, "timeoutMs"),
        ({"id": "t3", "handler": "x", "timeoutMs": -5}, "timeoutMs"),
        ({"id": "t4", "handler": ["log", "x"]}, "handler"),
        ({"id": "t5", "handler": 12}, "handler"),
        ({"id": "t6", "handler": None}, "handler"),
        ({"id": "t7"}, "handler"),
        ({"id": "t8", "handler": "x", "name": 5}, "name"),
        ({"id": "t9", "handler": "x", "description": ["a"]}, "description"),
        ({"id": "t10", "handler": "x", "retries": "3"}, "retries"),
        ({"id": "t11", "handler": "x", "retries": {"max": "3"}}, "retries.max"),
        ({"id": "t12", "handler": "x", "cacheTtlMs": 1.5}, "cacheTtlMs"),
        ({"id": "t13", "handler": {"kind": 5}}, "kind"),
        ({"id": "t14", "handler": {"kind": "eval"}}, "kind"),
        ({"id": "t15", "handler": {"kind": "sleep", "ms": "10"}}, "ms"),
        ({"id": "t16", "handler": {"kind": "shell", "argv": ["rm", "-rf", "/"]}}, "shell"),
        ({"id": "t17", "handler": {"kind": "http", "url": "http://169.254.169.254/"}}, "url"),
        ({"id": "t18", "handler": {"kind": "python", "entrypoint": "os:system"}}, "entry"),
        ({"id": "t19", "handler": "   "}, "handler"),
    ],
)
def test_wrong_types_and_disallowed_handlers_are_a_400_naming_the_field(
    cluster: Cluster, body: dict, field: str
) -> None:
    message = assert_error(send(cluster.nodes[2], "POST", "/operations", as_body(body)), 400)
    assert field in message
    if isinstance(body["id"], str):
        assert get(cluster.nodes[2], f"/operations/{body['id']}").status_code == 404


def test_an_unknown_handler_kind_lists_the_allowed_kinds(cluster: Cluster) -> None:
    body = as_body({"id": "kinds", "handler": {"kind": "javascript"}})
    message = assert_error(send(cluster.nodes[0], "POST", "/operations", body), 400)
    for kind in ("noop", "sleep", "log", "fail", "http", "python", "shell"):
        assert kind in message


@pytest.mark.parametrize(
    "op_id",
    ["../../etc/passwd", "..%2F..%2Fetc", "a" * 500, "ünïcödé", "💣", "", " lead", "a/b", "-x"],
)
def test_bad_ids_in_a_definition_are_a_400(cluster: Cluster, op_id: str) -> None:
    body = as_body({"id": op_id, "handler": "x"})
    message = assert_error(send(cluster.nodes[1], "POST", "/operations", body), 400)
    assert "id" in message


def test_an_id_with_a_trailing_newline_is_a_400(cluster: Cluster) -> None:
    body = as_body({"id": "newline-id\n", "handler": "x"})
    try:
        assert_error(send(cluster.nodes[0], "POST", "/operations", body), 400)
    finally:
        send(cluster.nodes[0], "DELETE", "/operations/newline-id%0A")


@pytest.mark.parametrize(
    "path",
    [
        "/operations/..%2F..%2Fetc%2Fpasswd",
        "/operations/%2E%2E",
        "/operations/" + "a" * 500,
        "/operations/%C3%BCn%C3%AF",
        "/operations/%FF%FE",
        "/operations/a%0Ab",
        "/operations/..%2F..%2Fetc/history",
        "/operations/" + "a" * 500 + "/history",
    ],
)
def test_bad_ids_in_a_path_are_a_4xx(cluster: Cluster, path: str) -> None:
    for node in cluster.nodes:
        assert_error(send(node, "GET", path, token=None), 400, 404)
    assert_error(send(cluster.nodes[0], "DELETE", path), 400, 404, 405)
    execute_path = path.replace("/operations/", "/execute/", 1)
    assert_error(send(cluster.nodes[0], "POST", execute_path), 400, 404)


# ---- execute, delete, history, feed, metrics -------------------------------------------


def test_executing_a_missing_operation_is_a_404(cluster: Cluster) -> None:
    for node in cluster.nodes:
        message = assert_error(send(node, "POST", "/execute/no-such-op"), 404)
        assert "no-such-op" in message


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'"params"', b'{"params": 1}', b'{"params": []}', b'{"foo": 1}', b"NaN"],
)
def test_executing_with_a_bad_body_is_a_400_and_runs_nothing(cluster: Cluster, body: bytes) -> None:
    node = cluster.nodes[2]
    before = get(node, "/operations/keep-op/history").json()
    assert_error(send(node, "POST", "/execute/keep-op", body), 400)
    assert get(node, "/operations/keep-op/history").json() == before


def test_deleting_a_missing_operation_is_a_404(cluster: Cluster) -> None:
    for node in cluster.nodes:
        assert_error(send(node, "DELETE", "/operations/no-such-op"), 404)


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=0",
        "limit=99999",
        "limit=-1",
        "limit=1.5",
        "limit=" + "9" * 5000,
        "before=-1",
        "after=x",
        "after=-1",
    ],
)
def test_history_with_bad_query_parameters_is_a_400(cluster: Cluster, query: str) -> None:
    message = assert_error(
        send(cluster.nodes[0], "GET", f"/operations/keep-op/history?{query}", token=None), 400
    )
    assert query.split("=")[0] in message


def test_history_of_a_missing_operation_is_a_404(cluster: Cluster) -> None:
    assert_error(send(cluster.nodes[0], "GET", "/operations/no-such-op/history", token=None), 404)


@pytest.mark.parametrize("query", ["after=-1", "after=abc", "limit=0", "limit=100000"])
def test_the_execution_feed_with_bad_query_parameters_is_a_400(
    cluster: Cluster, query: str
) -> None:
    assert_error(send(cluster.nodes[1], "GET", f"/executions?{query}", token=None), 400)


@pytest.mark.parametrize("window", ["1y", "week", "24H", "%2E%2E", "a%0Ab", "x" * 300])
def test_an_unknown_metrics_window_is_a_404(cluster: Cluster, window: str) -> None:
    message = assert_error(send(cluster.nodes[0], "GET", f"/metrics/{window}", token=None), 404)
    assert "24h" in message and "7d" in message and "month" in message


def test_an_unknown_route_or_method_is_a_json_4xx(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    assert_error(send(node, "GET", "/no/such/route", token=None), 404)
    assert_error(send(node, "PUT", "/operations/keep-op", as_body(KEEP)), 405)
    assert_error(send(node, "PATCH", "/operations", as_body(KEEP)), 405)


# ---- admin -----------------------------------------------------------------------------


def test_transfer_leader_to_an_unknown_node_is_a_404_on_leader_and_followers(
    cluster: Cluster,
) -> None:
    leader = cluster.leader()
    for node in cluster.nodes:
        for target in ("unrdf-daemon-9", "not a node\nat all"):
            body = as_body({"target": target})
            assert_error(send(node, "POST", "/admin/transfer-leader", body), 404)
    assert cluster.leader() is leader


@pytest.mark.parametrize(
    "body", [b"{", b'"x"', b'{"target": 5}', b'{"target": ["a"]}', b'{"to": "unrdf-daemon-1"}']
)
def test_transfer_leader_with_a_bad_body_is_a_400(cluster: Cluster, body: bytes) -> None:
    assert_error(send(cluster.nodes[0], "POST", "/admin/transfer-leader", body), 400)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b"{}",
        b'"unrdf-daemon-3"',
        b'{"name": "unrdf-daemon-3"}',
        b'{"name": "Bad Name!", "raftAddress": "127.0.0.1:1", "httpUrl": "http://127.0.0.1:2"}',
        b'{"name": 3, "raftAddress": "127.0.0.1:1", "httpUrl": "http://127.0.0.1:2"}',
        b'{"name": "unrdf-daemon-3", "raftAddress": "no-port", "httpUrl": "http://x"}',
        b'{"name": "unrdf-daemon-3", "raftAddress": 8081, "httpUrl": "http://x"}',
        b'{"name": "unrdf-daemon-3", "raftAddress": "127.0.0.1:1", "httpUrl": "ftp://x"}',
        b'{"name": "unrdf-daemon-3", "raftAddress": "127.0.0.1:1", "httpUrl": "http://x", "x": 1}',
    ],
)
def test_adding_a_member_with_a_bad_body_is_a_400(cluster: Cluster, body: bytes) -> None:
    assert_error(send(cluster.nodes[1], "POST", "/admin/members", body), 400)
    assert cluster.cluster_view()["clusterSize"] == 3


def test_removing_an_unknown_member_is_a_404(cluster: Cluster) -> None:
    for name in ("unrdf-daemon-9", "a%0Ab", "x" * 300):
        assert_error(send(cluster.nodes[0], "DELETE", f"/admin/members/{name}"), 404)


@pytest.mark.parametrize(
    "body", [b"{", b'{"node": ["a"]}', b'{"node": 5}', b'{"node": {}}', b'{"x": 1}', b'"x"']
)
def test_draining_with_a_bad_body_is_a_400_and_drains_nothing(
    cluster: Cluster, body: bytes
) -> None:
    assert_error(send(cluster.nodes[0], "POST", "/admin/drain", body), 400)
    assert_error(send(cluster.nodes[0], "POST", "/admin/undrain", body), 400)
    for node in cluster.nodes:
        assert get(node, "/health/node").json()["draining"] is False


def test_draining_an_unknown_node_is_a_404(cluster: Cluster) -> None:
    body = as_body({"node": "unrdf-daemon-9"})
    assert_error(send(cluster.nodes[0], "POST", "/admin/drain", body), 404)
    assert get(cluster.nodes[0], "/health/node").json()["draining"] is False


# ---- poisoned input --------------------------------------------------------------------

POISON = {
    "lone-surrogate-name": b'{"id": "p-sur", "name": "\\ud800", "handler": "x"}',
    "lone-surrogate-handler": b'{"id": "p-sur2", "handler": "\\udfff boom"}',
    "lone-surrogate-param-key": (
        b'{"id": "p-sur3", "handler": {"kind": "python", "entrypoint": "a:b", '
        b'"params": {"\\ud800": 1}}}'
    ),
    "nan-in-retries": b'{"id": "p-nan", "handler": "x", "retries": {"backoffMs": NaN}}',
    "infinite-sleep": b'{"id": "p-inf", "handler": {"kind": "sleep", "ms": 1e999}}',
    "huge-int": b'{"id": "p-int", "handler": "x", "timeoutMs": 1' + b"0" * 400 + b"}",
    "huge-message": json.dumps({"id": "p-huge", "handler": "m" * 100_000}).encode(),
    "nested-junk-handler": json.dumps(
        {"id": "p-nest", "handler": {"kind": "log", "message": {"a": [{"b": [1, {"c": None}]}]}}}
    ).encode(),
    "deep-handler": b'{"id": "p-deep", "handler": {"kind": "log", "message": '
    + b'{"a":' * 3000
    + b"1"
    + b"}" * 3000
    + b"}}",
    "record-like": json.dumps(
        {
            "seq": 1,
            "id": "p-record",
            "operationId": "keep-op",
            "status": "success",
            "duration": "NaN",
            "finishedAtEpoch": "soon",
            "node": "unrdf-daemon-0",
        }
    ).encode(),
    "id-object": b'{"id": {"$ne": null}, "handler": "x"}',
    "null-byte-id": b'{"id": "p-\\u0000", "handler": "x"}',
}


@pytest.mark.parametrize("body", list(POISON.values()), ids=list(POISON))
def test_a_poisoned_definition_is_refused_before_it_reaches_raft(
    cluster: Cluster, body: bytes
) -> None:
    for node in cluster.nodes:
        assert_error(send(node, "POST", "/operations", body), 400)
    for node in cluster.nodes:
        listed = get(node, "/operations")
        assert listed.status_code == 200, listed.text
        assert not [op for op in listed.json() if op["id"].startswith("p-")]


def test_the_cluster_keeps_committing_on_every_node_after_poisoned_input(
    cluster: Cluster,
) -> None:
    for body in POISON.values():
        assert_error(send(cluster.nodes[0], "POST", "/operations", body), 400)
    assert_still_commits(cluster, "after-poison")


def assert_still_commits(cluster: Cluster, prefix: str) -> None:
    for i, node in enumerate(cluster.nodes):
        op_id = f"{prefix}-{i}"
        created = cluster.define(node, {"id": op_id, "handler": {"kind": "noop"}})
        assert created.status_code == 201, created.text
        executed = cluster.post(node, f"/execute/{op_id}")
        assert executed.status_code == 200, executed.text
        assert executed.json()["status"] == "success"
    converged(cluster)
    for node in cluster.nodes:
        for i in range(len(cluster.nodes)):
            history = get(node, f"/operations/{prefix}-{i}/history").json()
            assert len(history) == 1


# ---- fuzzing ---------------------------------------------------------------------------

FIELDS = ["id", "name", "handler", "timeoutMs", "retries", "cacheTtlMs", "description"]
KINDS = ["noop", "sleep", "log", "fail", "http", "python", "shell", "eval", ""]


def random_string(rng: random.Random) -> str:
    pools = [
        "abcdefghijklmnopqrstuvwxyz0123456789-_.",
        "../\\%$\"'{}[]<>;|&`\n\r\t\x00 ",
        "üñïçødé💣\u202e\ufeff",
        "\ud800\udfff",
    ]
    pool = "".join(rng.sample(pools, rng.randint(1, len(pools))))
    size = rng.choice([0, 1, 5, 20, 129, 300, 5000])
    return "".join(rng.choice(pool) for _ in range(size))


def random_value(rng: random.Random, depth: int = 0) -> object:
    choices = ["null", "bool", "int", "float", "str", "list", "dict"]
    kind = rng.choice(choices if depth < 4 else choices[:5])
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, -1, 1, 7, 2**31, 2**63, -(2**70), 10**30, 100])
    if kind == "float":
        return rng.choice([0.5, -1.0, 1e308, float("nan"), float("inf"), 3.0])
    if kind == "str":
        return random_string(rng)
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {random_string(rng)[:10]: random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def random_handler(rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.3:
        return random_value(rng)
    spec: dict = {"kind": rng.choice(KINDS)}
    for key in rng.sample(["ms", "message", "level", "url", "argv", "entrypoint", "params"], 2):
        spec[key] = random_value(rng)
    return spec


def random_body(rng: random.Random, n: int) -> bytes:
    roll = rng.random()
    if roll < 0.05:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if roll < 0.10:
        return json.dumps(random_value(rng)).encode()
    if roll < 0.15:
        depth = rng.choice([500, 2000, 50_000])
        return b'{"id": "deep", "handler": ' + b"[" * depth + b"]" * depth + b"}"
    if roll < 0.25:
        # A valid definition now and then, so the fuzz also commits.
        return json.dumps({"id": f"fuzz-{n}", "handler": {"kind": "noop"}}).encode()
    body: dict = {}
    for field in rng.sample(FIELDS, rng.randint(0, len(FIELDS))):
        if field == "id" and rng.random() < 0.6:
            body[field] = f"fuzz-{n}" if rng.random() < 0.7 else random_string(rng)
        elif field == "handler":
            body[field] = random_handler(rng)
        else:
            body[field] = random_value(rng)
    if rng.random() < 0.2:
        body[random_string(rng)[:12]] = random_value(rng)
    return json.dumps(body).encode()


def test_three_hundred_random_bodies_never_get_a_5xx_and_the_cluster_still_commits(
    cluster: Cluster,
) -> None:
    rng = random.Random(20240611)
    accepted = []
    statuses: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(timeout=30, headers=headers) as client:
        for n in range(300):
            node = cluster.nodes[n % len(cluster.nodes)]
            body = random_body(rng, n)
            response = client.post(node.url + "/operations", content=body)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (n, body[:200], response.text[:300])
            if response.status_code in (200, 201):
                accepted.append(response.json()["id"])
            else:
                assert_error(response, 400, 413)
    # The fuzz must exercise both paths, or it proves nothing.
    assert len(accepted) >= 10, statuses
    assert statuses.get(400, 0) >= 150, statuses
    converged(cluster)
    for node in cluster.nodes:
        listed = {op["id"] for op in get(node, "/operations").json()}
        assert set(accepted) <= listed
    assert_still_commits(cluster, "after-fuzz")


def test_adding_a_member_whose_raft_port_is_not_a_number_is_a_400(make_cluster) -> None:
    # Its own cluster: a junk member would otherwise linger in the replicated directory.
    cluster = make_cluster(size=1)
    body = b'{"name": "unrdf-daemon-3", "raftAddress": "host:port", "httpUrl": "http://x"}'
    assert_error(send(cluster.nodes[0], "POST", "/admin/members", body), 400)
