"""daemonctl: commands, argument parsing and error reporting (no real cluster).

HTTP is faked with httpx.MockTransport; end-to-end tests against real nodes are in
test_against_a_cluster.py.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from daemon.ctl.client import split_urls
from daemon.ctl.commands import build_definition, parse_handler
from daemon.ctl.parser import build_parser, main
from tests.cluster_harness import ROOT
from tests.daemon.ctl.samples import CLUSTER

Handler = Callable[[httpx.Request], httpx.Response]


def run(argv: list[str], handler: Handler | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    transport = httpx.MockTransport(handler) if handler else None
    code = main(argv, transport=transport, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def answering(routes: dict[tuple[str, str], httpx.Response], seen: list[httpx.Request]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        key = (request.method, request.url.path)
        if key not in routes:
            return httpx.Response(404, json={"error": f"no route {key}"})
        return routes[key]

    return handler


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------ main + HTTP


def test_status_command_prints_table() -> None:
    seen: list[httpx.Request] = []
    routes = {("GET", "/health/cluster"): httpx.Response(200, json=CLUSTER)}
    code, out, err = run(["status"], answering(routes, seen))
    assert (code, err) == (0, "")
    assert out.startswith("NAME ")
    assert "* unrdf-daemon-0" in out
    assert seen[0].headers["accept"] == "application/json"
    assert "authorization" not in seen[0].headers


@pytest.mark.parametrize("argv", [["--json", "status"], ["status", "--json"]])
def test_json_is_a_passthrough(argv: list[str]) -> None:
    routes = {("GET", "/health/cluster"): httpx.Response(200, json=CLUSTER)}
    code, out, _ = run(argv, answering(routes, []))
    assert code == 0
    assert json.loads(out) == CLUSTER


def test_no_node_answers_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAEMON_URL", raising=False)
    port = free_loopback_port()
    code, out, err = run(["--url", f"http://127.0.0.1:{port}", "--timeout", "5", "status"])
    assert code == 1
    assert out == ""
    assert err == f"daemonctl: no node answered at http://127.0.0.1:{port} (connection refused)\n"


def test_tries_each_url_until_one_answers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host in ("down-a", "down-b"):
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(200, json=CLUSTER)

    argv = ["--url", "http://down-a:8080,http://down-b:8080", "--url", "up:8080", "status"]
    code, _, err = run(argv, handler)
    assert (code, err) == (0, "")
    assert [r.url.host for r in seen] == ["down-a", "down-b", "up"]


def test_all_urls_down_lists_each() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        raise httpx.ConnectTimeout("timed out", request=request)

    code, _, err = run(["--url", "http://a:1,http://b:2", "queue"], handler)
    assert code == 1
    assert err == (
        "daemonctl: no node answered at http://a:1 (connection refused), http://b:2 (timed out)\n"
    )


def test_post_is_not_resent_after_a_lost_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ReadTimeout("read timed out", request=request)

    code, _, err = run(["--url", "http://a:1,http://b:2", "ops", "exec", "op1"], handler)
    assert code == 1
    assert len(seen) == 1
    assert err.count("\n") == 1
    assert "may still have taken effect" in err


def test_http_error_prints_api_error_and_status() -> None:
    body = {"error": "refused: removing unrdf-daemon-1 would lose quorum"}
    routes = {("DELETE", "/admin/members/unrdf-daemon-1"): httpx.Response(409, json=body)}
    code, out, err = run(["members", "remove", "unrdf-daemon-1"], answering(routes, []))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("daemonctl: refused: removing unrdf-daemon-1 would lose quorum (HTTP 409")


def test_http_error_without_json_body_and_retry_after() -> None:
    routes = {
        ("POST", "/execute/op1"): httpx.Response(
            429, text="<html>\nbusy\n</html>", headers={"Retry-After": "2"}
        )
    }
    code, _, err = run(["ops", "exec", "op1"], answering(routes, []))
    assert code == 1
    assert err.count("\n") == 1
    assert "HTTP 429" in err and "retry after 2s" in err


def test_unauthorized_hints_at_token() -> None:
    routes = {("POST", "/admin/snapshot"): httpx.Response(401, json={"error": "missing token"})}
    _, _, err = run(["snapshot"], answering(routes, []))
    assert "missing token" in err and "DAEMON_TOKEN" in err


def test_env_defaults_for_url_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAEMON_URL", "http://envnode:9000/")
    monkeypatch.setenv("DAEMON_TOKEN", "s3cret")
    seen: list[httpx.Request] = []
    routes = {("GET", "/queue"): httpx.Response(200, json={"active": 0, "items": []})}
    code, _, _ = run(["queue"], answering(routes, seen))
    assert code == 0
    assert str(seen[0].url) == "http://envnode:9000/queue"
    assert seen[0].headers["authorization"] == "Bearer s3cret"


def test_token_flag_overrides_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAEMON_TOKEN", "from-env")
    seen: list[httpx.Request] = []
    routes = {("GET", "/queue"): httpx.Response(200, json={})}
    run(["--url", "http://x", "--token", "flag", "queue"], answering(routes, seen))
    assert seen[0].headers["authorization"] == "Bearer flag"


def record(status: str) -> dict[str, Any]:
    return {
        "seq": 17,
        "id": "uuid",
        "operationId": "op1",
        "status": status,
        "duration": 1.2,
        "node": "unrdf-daemon-0",
        "attempts": 1,
        "cached": False,
        "error": None if status == "success" else "boom",
        "result": None,
    }


@pytest.mark.parametrize(("status", "code"), [("success", 0), ("failure", 1), ("timeout", 1)])
def test_ops_exec_exit_code_follows_status(status: str, code: int) -> None:
    seen: list[httpx.Request] = []
    routes = {("POST", "/execute/op1"): httpx.Response(200, json=record(status))}
    got, out, err = run(["ops", "exec", "op1", "--params", '{"n": 1}'], answering(routes, seen))
    assert (got, err) == (code, "")
    assert f"status:      {status}" in out
    assert json.loads(seen[0].content) == {"params": {"n": 1}}


def test_ops_exec_json_output() -> None:
    routes = {("POST", "/execute/op1"): httpx.Response(200, json=record("failure"))}
    code, out, _ = run(["--json", "ops", "exec", "op1"], answering(routes, []))
    assert code == 1
    assert json.loads(out) == record("failure")


def test_ops_define_sends_definition() -> None:
    seen: list[httpx.Request] = []
    routes = {("POST", "/operations"): httpx.Response(201, json={"id": "op1"})}
    argv = [
        "ops",
        "define",
        "op1",
        "--name",
        "Op",
        "--handler",
        '{"kind": "sleep", "ms": 5}',
        "--timeout-ms",
        "5000",
        "--retries",
        "3",
        "--backoff-ms",
        "200",
        "--cache-ttl-ms",
        "60000",
    ]
    code, out, _ = run(argv, answering(routes, seen))
    assert code == 0
    assert out == "created operation op1\n"
    assert json.loads(seen[0].content) == {
        "id": "op1",
        "name": "Op",
        "handler": {"kind": "sleep", "ms": 5},
        "timeoutMs": 5000,
        "cacheTtlMs": 60000,
        "retries": {"max": 3, "backoffMs": 200},
    }


def test_ops_define_from_file_with_overrides(tmp_path: Any) -> None:
    path = tmp_path / "def.json"
    path.write_text(
        json.dumps({"id": "ignored", "name": "From file", "handler": "x", "retries": {"max": 1}})
    )
    args = build_parser().parse_args(
        ["ops", "define", "op1", "--file", str(path), "--retries", "4"]
    )
    assert build_definition(args) == {
        "id": "op1",
        "name": "From file",
        "handler": "x",
        "retries": {"max": 4},
    }


def test_ops_define_requires_name_and_handler() -> None:
    code, _, err = run(["ops", "define", "op1", "--name", "x"])
    assert code == 2
    assert err == "daemonctl: ops define: missing --handler\n"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ('console.log("success")', 'console.log("success")'),
        ('{"kind": "noop"}', {"kind": "noop"}),
        ('"quoted"', "quoted"),
        ("[1, 2]", "[1, 2]"),
        ("42", "42"),
    ],
)
def test_parse_handler(spec: str, expected: Any) -> None:
    assert parse_handler(spec) == expected


def test_drain_with_node_goes_to_that_node() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/health/cluster":
            return httpx.Response(200, json=CLUSTER)
        return httpx.Response(200, json={"node": "unrdf-daemon-2", "draining": True})

    code, out, _ = run(["--url", "http://node0:8080", "drain", "--node", "unrdf-daemon-2"], handler)
    assert code == 0
    assert out == "unrdf-daemon-2: draining\n"
    assert [(r.method, str(r.url)) for r in seen] == [
        ("GET", "http://node0:8080/health/cluster"),
        ("POST", "http://node2:8080/admin/drain"),
    ]


def test_drain_unknown_node() -> None:
    routes = {("GET", "/health/cluster"): httpx.Response(200, json=CLUSTER)}
    code, _, err = run(["undrain", "--node", "nope"], answering(routes, []))
    assert code == 1
    assert err.startswith("daemonctl: no member named nope (members: unrdf-daemon-0, ")


def test_snapshot_prints_before_and_after() -> None:
    body = {
        "status": "compacted",
        "journalBytesBefore": 8 * 1024 * 1024,
        "journalBytesAfter": 4096,
        "dataDirBytesBefore": 9 * 1024 * 1024,
        "dataDirBytesAfter": 10240,
    }
    routes = {("POST", "/admin/snapshot"): httpx.Response(200, json=body)}
    code, out, _ = run(["snapshot"], answering(routes, []))
    assert code == 0
    assert "journal:  8.0 MiB -> 4.0 KiB (8388608 -> 4096 bytes)" in out
    assert "data dir: 9.0 MiB -> 10.0 KiB" in out


def test_metrics_window_path() -> None:
    seen: list[httpx.Request] = []
    body = {"totalOperations": 10, "successRate": 99.5, "clusterHealth": {"failoverCount": 1}}
    routes = {("GET", "/metrics/7d"): httpx.Response(200, json=body)}
    code, out, _ = run(["metrics", "--window", "7d"], answering(routes, seen))
    assert code == 0
    assert "success rate:" in out and "99.5 %" in out and "failovers:" in out


def test_members_list_prints_a_table() -> None:
    members = [
        {
            "name": "unrdf-daemon-0",
            "role": "leader",
            "reachable": True,
            "raftAddress": "h:8081",
            "httpUrl": "http://h:8080",
        }
    ]
    routes = {("GET", "/admin/members"): httpx.Response(200, json=members)}
    code, out, _ = run(["members", "list"], answering(routes, []))
    assert code == 0
    assert out.splitlines()[1].split() == [
        "unrdf-daemon-0",
        "leader",
        "yes",
        "h:8081",
        "http://h:8080",
    ]


def test_transfer_leader_body() -> None:
    seen: list[httpx.Request] = []
    routes = {("POST", "/admin/transfer-leader"): httpx.Response(200, json={"leader": "n1"})}
    code, out, _ = run(["transfer-leader", "--to", "n1"], answering(routes, seen))
    assert (code, out) == (0, "leader: n1\n")
    assert json.loads(seen[0].content) == {"target": "n1"}


@pytest.mark.parametrize(
    ("argv", "path", "body"),
    [
        (["status"], "/health/cluster", [1, 2]),
        (["status"], "/health/cluster", {**CLUSTER, "nodes": None}),
        (["drain", "--node", "unrdf-daemon-2"], "/health/cluster", {"leader": 3}),
        (["members", "list"], "/admin/members", {"members": []}),
    ],
)
def test_unexpected_answer_shape_is_still_one_line(argv: list[str], path: str, body: Any) -> None:
    routes = {("GET", path): httpx.Response(200, json=body)}
    code, _, err = run(argv, answering(routes, []))
    assert code == 1
    assert err.startswith("daemonctl: unexpected answer from the daemon: ")
    assert err.count("\n") == 1 and "Traceback" not in err


# ---------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["ops"],
        ["metrics", "--window", "1y"],
        ["members", "add", "n3", "--raft", "nohostport", "--http", "http://x"],
        ["members", "add", "n3", "--raft", "h:1", "--http", "ftp://x"],
        ["ops", "exec", "op1", "--params", "{not json"],
        ["--insecure", "--cacert", "ca.pem", "status"],
        ["--timeout", "0", "status"],
        ["ops", "history", "op1", "--limit", "many"],
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str]) -> None:
    code, out, err = run(argv, answering({}, []))
    assert code == 2
    assert out == ""
    assert err.startswith("daemonctl: ")
    assert err.count("\n") == 1


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "DAEMON_URL" in text
    assert main(["ops", "define", "--help"]) == 0
    assert "console.log" in capsys.readouterr().out


def test_split_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAEMON_URL", raising=False)
    assert split_urls(None) == ["http://127.0.0.1:8080"]
    assert split_urls(["http://a:1/, b:2", "http://a:1"]) == ["http://a:1", "http://b:2"]
    monkeypatch.setenv("DAEMON_URL", "https://x:8443,https://y:8443")
    assert split_urls([]) == ["https://x:8443", "https://y:8443"]


def test_daemonctl_imports_without_django() -> None:
    code = "import sys; sys.modules['django'] = None; import daemon.ctl"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()


def test_the_daemonctl_entry_point_names_this_main() -> None:
    import importlib
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["daemonctl"]
    module, _, attr = target.partition(":")
    assert getattr(importlib.import_module(module), attr) is main
