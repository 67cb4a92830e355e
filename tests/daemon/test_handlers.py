"""Handlers are declared kinds checked against the operator's policy; nothing from the wire runs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from daemon.handlers import (
    HANDLER_KINDS,
    HandlerError,
    HandlerFailure,
    HandlerPolicy,
    parse_handler,
    run_handler,
)
from tests.loopback import http_server

EP = "tests.daemon.sample_entrypoints"
OPEN = HandlerPolicy()


class _Responder(BaseHTTPRequestHandler):
    """GET/POST /status/<code> answers that code; POST bodies are echoed back."""

    def _answer(self) -> None:
        code = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/status/") else 404
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b"hello"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_base() -> Iterator[str]:
    with http_server(_Responder) as url:
        yield url


# ------------------------------------------------------------------ the runbook's string form


def test_seed_handler_string_is_stored_as_log_handler() -> None:
    seed = 'console.log("success")'
    assert parse_handler(seed, OPEN) == {"kind": "log", "message": seed, "level": "info"}


async def test_seed_handler_string_is_logged_and_never_evaluated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    handler = parse_handler(payload, OPEN)

    with caplog.at_level(logging.INFO, logger="daemon.handlers"):
        result = await run_handler(handler, OPEN)

    assert result == {"logged": payload}
    assert not marker.exists()
    assert payload in caplog.text


async def test_log_message_line_breaks_cannot_forge_log_lines(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = parse_handler({"kind": "log", "message": "a\nERROR fake", "level": "warning"}, OPEN)
    with caplog.at_level(logging.INFO, logger="daemon.handlers"):
        await run_handler(handler, OPEN)
    assert [r.getMessage() for r in caplog.records] == ["a\\nERROR fake"]
    assert caplog.records[0].levelno == logging.WARNING


def test_empty_string_handler_is_rejected() -> None:
    with pytest.raises(HandlerError, match="must not be empty"):
        parse_handler("   ", OPEN)


# ------------------------------------------------------------------ kinds and shapes


def test_unknown_kind_message_lists_allowed_kinds() -> None:
    with pytest.raises(HandlerError) as caught:
        parse_handler({"kind": "javascript", "code": "1"}, OPEN)
    assert str(caught.value) == (
        "unknown handler kind 'javascript'; "
        "allowed kinds: noop, sleep, log, fail, http, python, shell"
    )


def test_missing_kind_lists_allowed_kinds() -> None:
    with pytest.raises(HandlerError, match="missing 'kind'; allowed kinds: noop, sleep"):
        parse_handler({"ms": 5}, OPEN)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"kind": "noop"}, {"kind": "noop"}),
        ({"kind": "sleep", "ms": 250}, {"kind": "sleep", "ms": 250}),
        ({"kind": "sleep", "ms": 250.0}, {"kind": "sleep", "ms": 250}),
        (
            {"kind": "log", "message": "hi", "level": "ERROR"},
            {"kind": "log", "message": "hi", "level": "error"},
        ),
        ({"kind": "fail", "message": "drill"}, {"kind": "fail", "message": "drill"}),
    ],
)
def test_valid_specs_normalise_to_plain_json_and_normalising_twice_changes_nothing(
    spec: dict, expected: dict
) -> None:
    normalised = parse_handler(spec, OPEN)
    assert normalised == expected
    assert json.loads(json.dumps(normalised)) == normalised
    assert parse_handler(normalised, OPEN) == normalised


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (None, "must be a string or an object"),
        (42, "must be a string or an object"),
        (["noop"], "must be a string or an object"),
        ({"kind": 7}, "unknown handler kind '7'"),
        ({"kind": "noop", "extra": 1}, "unknown field 'extra'"),
        ({"kind": "sleep"}, "missing required field 'ms'"),
        ({"kind": "sleep", "ms": "100"}, "'ms' must be an integer"),
        ({"kind": "sleep", "ms": True}, "'ms' must be an integer"),
        ({"kind": "sleep", "ms": 1.5}, "'ms' must be an integer"),
        ({"kind": "sleep", "ms": -1}, "between 0 and 3600000"),
        ({"kind": "sleep", "ms": 3_600_001}, "between 0 and 3600000"),
        ({"kind": "sleep", "ms": 10**400}, "between 0 and 3600000"),
        ({"kind": "log", "message": 3}, "'message' must be a string"),
        ({"kind": "log", "message": "x" * 4097}, "longer than 4096"),
        ({"kind": "log", "message": "x", "level": "debug"}, "'level' must be one of"),
        ({"kind": "fail", "message": ["x"]}, "'message' must be a string"),
        ({"kind": "http"}, "missing required field 'url'"),
        ({"kind": "http", "url": "ftp://x/"}, "must start with http://"),
        ({"kind": "python", "entrypoint": "os.system"}, "must look like 'package.module:function'"),
        ({"kind": "python", "entrypoint": f"{EP}:echo", "params": [1]}, "not allowed"),
        ({"kind": "shell", "argv": "true"}, "non-empty array"),
        ({"kind": "shell", "argv": []}, "non-empty array"),
        ({"kind": "shell", "argv": [1]}, "'argv[]' must be a string"),
    ],
)
def test_bad_definitions_raise_handler_error_with_a_one_line_message(
    spec: object, fragment: str
) -> None:
    with pytest.raises(HandlerError) as caught:
        parse_handler(spec, OPEN)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def _random_json(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth > 3 or roll < 0.35:
        return rng.choice(
            [
                None,
                True,
                False,
                0,
                -1,
                1.5,
                10**20,
                float("nan"),
                float("inf"),
                "",
                "x",
                "GET",
                "info",
                "http://127.0.0.1/",
                "true",
                "tests.daemon.sample_entrypoints:echo",
            ]
        )
    if roll < 0.55:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    fields = [
        "kind",
        "ms",
        "message",
        "level",
        "url",
        "method",
        "expectStatus",
        "entrypoint",
        "params",
        "argv",
        "zzz",
    ]
    spec = {rng.choice(fields): _random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if rng.random() < 0.8:
        spec["kind"] = rng.choice([*HANDLER_KINDS, "eval", 3])
    return spec


def test_fuzzed_json_only_ever_parses_to_a_dict_or_raises_handler_error() -> None:
    rng = random.Random(20240601)
    policy = HandlerPolicy(
        http_allow=("http://127.0.0.1/",),
        python_allow=(f"{EP}:echo",),
        shell_enabled=True,
        shell_allow=("true",),
    )
    accepted = 0
    for _ in range(20_000):
        spec = _random_json(rng)
        try:
            result = parse_handler(spec, policy)
        except HandlerError:
            continue
        assert isinstance(result, dict) and result["kind"] in HANDLER_KINDS
        assert parse_handler(result, policy) == result
        accepted += 1
    assert accepted > 50  # the generator must reach the accepting paths too


# ------------------------------------------------------------------ http


def test_http_url_outside_allow_list_is_refused_naming_the_config_key() -> None:
    with pytest.raises(HandlerError, match=r"handlers\.http\.allow"):
        parse_handler({"kind": "http", "url": "http://127.0.0.1:9/x"}, OPEN)


@pytest.mark.parametrize(
    "url", ["http://api.example.evil/", "http://api.example@evil.test/", "http://api.example:99/"]
)
def test_http_allow_prefix_must_end_at_a_url_boundary(url: str) -> None:
    policy = HandlerPolicy(http_allow=("http://api.example",))
    with pytest.raises(HandlerError, match="not allowed"):
        parse_handler({"kind": "http", "url": url}, policy)
    assert parse_handler({"kind": "http", "url": "http://api.example/v1"}, policy)["url"]


async def test_http_handler_succeeds_on_2xx_from_a_real_server(http_base: str) -> None:
    policy = HandlerPolicy(http_allow=(http_base + "/",))
    handler = parse_handler({"kind": "http", "url": f"{http_base}/status/200"}, policy)
    assert handler["method"] == "GET"
    assert await run_handler(handler, policy) == {"status": 200, "body": "hello"}


async def test_http_handler_fails_on_5xx(http_base: str) -> None:
    policy = HandlerPolicy(http_allow=(http_base + "/",))
    handler = parse_handler({"kind": "http", "url": f"{http_base}/status/503"}, policy)
    with pytest.raises(HandlerFailure, match="returned 503, expected 2xx/3xx"):
        await run_handler(handler, policy)


async def test_http_handler_expect_status_decides_success(http_base: str) -> None:
    policy = HandlerPolicy(http_allow=(http_base + "/",))
    url = f"{http_base}/status/404"
    assert (
        await run_handler(
            parse_handler({"kind": "http", "url": url, "expectStatus": 404}, policy), policy
        )
    )["status"] == 404
    with pytest.raises(HandlerFailure, match="returned 200, expected 201"):
        spec = {"kind": "http", "url": f"{http_base}/status/200", "expectStatus": 201}
        await run_handler(parse_handler(spec, policy), policy)


async def test_http_post_sends_execute_params_as_json_body(http_base: str) -> None:
    policy = HandlerPolicy(http_allow=(http_base + "/",))
    spec = {"kind": "http", "url": f"{http_base}/status/201", "method": "post"}
    result = await run_handler(parse_handler(spec, policy), policy, {"n": 1})
    assert result == {"status": 201, "body": '{"n":1}'}


async def test_http_handler_fails_when_nothing_listens() -> None:
    policy = HandlerPolicy(http_allow=("http://127.0.0.1:1/",), http_timeout_s=5)
    handler = parse_handler({"kind": "http", "url": "http://127.0.0.1:1/x"}, policy)
    with pytest.raises(HandlerFailure, match="ConnectError"):
        await run_handler(handler, policy)


async def test_http_handler_is_rechecked_against_the_policy_at_run_time(http_base: str) -> None:
    handler = parse_handler(
        {"kind": "http", "url": f"{http_base}/status/200"}, HandlerPolicy(http_allow=(http_base,))
    )
    with pytest.raises(HandlerFailure, match="no longer allowed"):
        await run_handler(handler, OPEN)


# ------------------------------------------------------------------ python


def test_python_entry_point_must_be_allow_listed() -> None:
    with pytest.raises(HandlerError, match=r"handlers\.python\.allow"):
        parse_handler({"kind": "python", "entrypoint": f"{EP}:echo"}, OPEN)


@pytest.mark.parametrize("func", ["echo", "async_echo"])
async def test_python_entry_point_runs_with_execute_params_over_stored_params(func: str) -> None:
    policy = HandlerPolicy(python_allow=(f"{EP}:{func}",))
    spec = {"kind": "python", "entrypoint": f"{EP}:{func}", "params": {"a": 1, "b": 2}}
    result = await run_handler(parse_handler(spec, policy), policy, {"b": 3})
    assert result == {"echo": {"a": 1, "b": 3}}


async def test_python_entry_point_exception_becomes_a_one_line_failure() -> None:
    policy = HandlerPolicy(python_allow=(f"{EP}:boom",))
    handler = parse_handler({"kind": "python", "entrypoint": f"{EP}:boom"}, policy)
    with pytest.raises(HandlerFailure) as caught:
        await run_handler(handler, policy)
    assert str(caught.value) == "ValueError: the widget exploded"


async def test_python_entry_point_removed_from_allow_list_no_longer_runs() -> None:
    policy = HandlerPolicy(python_allow=(f"{EP}:echo",))
    handler = parse_handler({"kind": "python", "entrypoint": f"{EP}:echo"}, policy)
    with pytest.raises(HandlerFailure, match=r"no longer in handlers\.python\.allow"):
        await run_handler(handler, OPEN)


async def test_python_entry_point_that_cannot_be_imported_fails_cleanly() -> None:
    entrypoint = "tests.daemon.no_such_module:run"
    policy = HandlerPolicy(python_allow=(entrypoint,))
    handler = parse_handler({"kind": "python", "entrypoint": entrypoint}, policy)
    with pytest.raises(HandlerFailure, match="cannot load entry point"):
        await run_handler(handler, policy)


async def test_oversized_results_are_refused_because_they_would_be_replicated() -> None:
    policy = HandlerPolicy(python_allow=(f"{EP}:huge",))
    handler = parse_handler({"kind": "python", "entrypoint": f"{EP}:huge"}, policy)
    with pytest.raises(HandlerFailure, match="larger than"):
        await run_handler(handler, policy)


# ------------------------------------------------------------------ shell


def test_shell_is_disabled_by_default() -> None:
    with pytest.raises(HandlerError, match=r"handlers\.shell\.enabled"):
        parse_handler({"kind": "shell", "argv": ["true"]}, OPEN)


def test_shell_executable_must_be_allow_listed_exactly() -> None:
    policy = HandlerPolicy(shell_enabled=True, shell_allow=("true",))
    with pytest.raises(HandlerError, match=r"handlers\.shell\.allow"):
        parse_handler({"kind": "shell", "argv": ["/bin/true"]}, policy)


def test_shell_allow_list_holds_whole_command_templates_not_executables() -> None:
    policy = HandlerPolicy(shell_enabled=True, shell_allow=("systemctl restart *", "uptime"))
    assert parse_handler({"kind": "shell", "argv": ["systemctl", "restart", "web"]}, policy)
    assert parse_handler({"kind": "shell", "argv": ["uptime"]}, policy)
    for argv in (
        ["systemctl", "stop", "web"],
        ["systemctl", "restart", "web", "db"],
        ["uptime", "-p"],
        ["sh", "-c", "cat /etc/shadow"],
    ):
        with pytest.raises(HandlerError, match="matches no template"):
            parse_handler({"kind": "shell", "argv": argv}, policy)


async def test_allowed_shell_commands_succeed_or_fail_by_exit_status() -> None:
    policy = HandlerPolicy(shell_enabled=True, shell_allow=("true", "false"))
    ok = await run_handler(parse_handler({"kind": "shell", "argv": ["true"]}, policy), policy)
    assert ok == {"exitCode": 0, "stdout": ""}
    with pytest.raises(HandlerFailure, match="exit status 1"):
        await run_handler(parse_handler({"kind": "shell", "argv": ["false"]}, policy), policy)


async def test_shell_arguments_are_not_interpreted_by_a_shell(tmp_path: Path) -> None:
    policy = HandlerPolicy(shell_enabled=True, shell_allow=("echo *",))
    marker = tmp_path / "pwned"
    spec = {"kind": "shell", "argv": ["echo", f"$(touch {marker}); touch {marker}"]}
    result = await run_handler(parse_handler(spec, policy), policy)
    assert result["stdout"] == f"$(touch {marker}); touch {marker}\n"
    assert not marker.exists()


async def test_cancelled_shell_command_is_killed(tmp_path: Path) -> None:
    policy = HandlerPolicy(shell_enabled=True, shell_allow=("sh -c *",))
    pid_file = tmp_path / "pid"
    spec = {"kind": "shell", "argv": ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 300"]}
    task = asyncio.create_task(run_handler(parse_handler(spec, policy), policy))
    async with asyncio.timeout(10):
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.01)  # polling a condition, not a guess at timing
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_every_kind_of_the_contract_has_a_parser_and_a_runner() -> None:
    from daemon.handlers import parse, run

    assert set(parse._PARSERS) == set(HANDLER_KINDS) == set(run._RUNNERS)
