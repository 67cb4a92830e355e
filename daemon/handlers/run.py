"""Running a stored handler on the node that executes it, one attempt at a time."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import httpx

from daemon.handlers.policy import (
    DEFAULT_FAIL_MESSAGE,
    MAX_RESULT_BYTES,
    OUTPUT_TAIL_CHARS,
    SHELL_ENV,
    HandlerFailure,
    HandlerPolicy,
    shell_allowed,
    show,
    url_allowed,
)

_LOG_LEVEL_NUMBERS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# Named for the package, as before the split: operators filter on it.
logger = logging.getLogger("daemon.handlers")


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _failure_from(exc: BaseException) -> HandlerFailure:
    detail = _one_line(str(exc))
    return HandlerFailure(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)


def _small_json(result: object) -> object:
    """Make a handler's return value safe to replicate: plain JSON and bounded in size."""
    try:
        text = json.dumps(result, default=str, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise HandlerFailure(f"result is not JSON-serialisable: {_one_line(str(exc))}") from exc
    if len(text.encode()) > MAX_RESULT_BYTES:
        raise HandlerFailure(f"result is larger than {MAX_RESULT_BYTES} bytes of JSON")
    return json.loads(text)


async def _run_log(handler: dict, policy: HandlerPolicy, params: dict) -> object:
    message = handler["message"]
    # Escape line breaks so a message cannot forge extra log lines.
    shown = message.replace("\r", "\\r").replace("\n", "\\n")
    logger.log(_LOG_LEVEL_NUMBERS[handler.get("level", "info")], "%s", shown)
    return {"logged": message}


async def _run_sleep(handler: dict, policy: HandlerPolicy, params: dict) -> object:
    await asyncio.sleep(handler["ms"] / 1000.0)
    return {"sleptMs": handler["ms"]}


async def _run_noop(handler: dict, policy: HandlerPolicy, params: dict) -> object:
    return None


async def _run_fail(handler: dict, policy: HandlerPolicy, params: dict) -> object:
    raise HandlerFailure(_one_line(handler.get("message") or DEFAULT_FAIL_MESSAGE))


async def _run_http(handler: dict, policy: HandlerPolicy, params: dict) -> object:
    url, method = handler["url"], handler.get("method", "GET")
    if not url_allowed(url, policy.http_allow):
        raise HandlerFailure(f"url '{show(url)}' is no longer allowed by handlers.http.allow")
    body = params if method in ("POST", "PUT") and params else None
    try:
        # Redirects are not followed: a redirect could leave the allow-listed prefix.
        async with httpx.AsyncClient(timeout=policy.http_timeout_s, follow_redirects=False) as c:
            response = await c.request(method, url, json=body)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _failure_from(exc) from exc
    expected = handler.get("expectStatus")
    ok = response.status_code == expected if expected else 200 <= response.status_code < 400
    if not ok:
        want = f"expected {expected}" if expected else "expected 2xx/3xx"
        raise HandlerFailure(f"{method} {show(url)} returned {response.status_code}, {want}")
    return {"status": response.status_code, "body": response.text[:OUTPUT_TAIL_CHARS]}


def _resolve_entrypoint(entrypoint: str) -> Callable[..., Any]:
    module_name, _, attr = entrypoint.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise HandlerFailure(
            f"cannot load entry point '{entrypoint}': {_one_line(str(exc))}"
        ) from exc
    if not callable(target):
        raise HandlerFailure(f"entry point '{entrypoint}' is not callable")
    return target


async def _run_python(handler: dict, policy: HandlerPolicy, params: dict) -> object:
    entrypoint = handler["entrypoint"]
    if entrypoint not in policy.python_allow:
        raise HandlerFailure(f"entry point '{entrypoint}' is no longer in handlers.python.allow")
    func = _resolve_entrypoint(entrypoint)
    # Execute-time params override the defaults stored with the definition.
    call_params = {**(handler.get("params") or {}), **params}
    try:
        if inspect.iscoroutinefunction(func):
            result = await func(call_params)
        else:
            # A sync callable cannot be interrupted: on timeout its thread runs to completion.
            result = await asyncio.to_thread(func, call_params)
            if inspect.isawaitable(result):
                result = await result
    except HandlerFailure:
        raise
    except Exception as exc:
        raise _failure_from(exc) from exc
    return result


async def _read_tail(stream: asyncio.StreamReader | None, limit: int) -> str:
    """Drain a pipe, keeping only its last ``limit`` bytes so chatty commands cost no memory."""
    if stream is None:
        return ""
    tail = b""
    while chunk := await stream.read(65_536):
        tail = (tail + chunk)[-limit:]
    return tail.decode(errors="replace")


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # The command runs in its own session, so this also reaps anything it spawned.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _run_shell(handler: dict, policy: HandlerPolicy, params: dict) -> object:
    argv = handler["argv"]
    if not policy.shell_enabled or not shell_allowed(argv, policy.shell_allow):
        raise HandlerFailure(f"command '{show(' '.join(argv))}' is no longer allowed by the policy")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            env=dict(SHELL_ENV),
        )
    except OSError as exc:
        raise _failure_from(exc) from exc
    try:
        stdout, stderr = await asyncio.gather(
            _read_tail(proc.stdout, OUTPUT_TAIL_CHARS), _read_tail(proc.stderr, OUTPUT_TAIL_CHARS)
        )
        code = await proc.wait()
    except BaseException:
        _kill_group(proc)
        with contextlib.suppress(BaseException):
            await asyncio.shield(proc.wait())
        raise
    if code != 0:
        last = stderr.strip().splitlines()[-1:] or [""]
        raise HandlerFailure(_one_line(f"exit status {code}: {last[0]}".rstrip(": ")))
    return {"exitCode": code, "stdout": stdout}


_RUNNERS: dict[str, Callable[[dict, HandlerPolicy, dict], Any]] = {
    "noop": _run_noop,
    "sleep": _run_sleep,
    "log": _run_log,
    "fail": _run_fail,
    "http": _run_http,
    "python": _run_python,
    "shell": _run_shell,
}


async def run_handler(handler: dict, policy: HandlerPolicy, params: dict | None = None) -> object:
    """Run one attempt of a normalised handler and return a small JSON-able result.

    Raises :class:`HandlerFailure` on failure. Cancellation propagates (the executor's
    timeout relies on it); a running ``shell`` command is killed when cancelled.
    ``params`` reach ``python`` handlers (merged over their stored params) and the JSON
    body of ``http`` POST/PUT; other kinds ignore them.
    """
    runner = _RUNNERS.get(handler.get("kind")) if isinstance(handler, dict) else None
    if runner is None:
        raise HandlerFailure(f"unknown handler kind '{show(handler)}'")
    return _small_json(await runner(handler, policy, dict(params or {})))
