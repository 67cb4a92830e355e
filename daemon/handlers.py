"""Operation handlers: declared kinds from a registry, never code from the wire.

An operation's ``handler`` is validated once by :func:`parse_handler` into a plain,
JSON-able dict that goes into the replicated state, and run by :func:`run_handler`
on the node that executes it. Nothing here evaluates text it was sent: the runbook's
``"console.log(\\"success\\")"`` becomes a ``log`` handler whose message is that string.

Kinds that reach outside the process (``http``, ``python``, ``shell``) are gated by
the operator's :class:`HandlerPolicy`, checked when a handler is defined and again
when it runs, because the policy can be tightened after the definition was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import math
import os
import re
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from daemon.contract import HANDLER_KINDS

LOG_LEVELS: tuple[str, ...] = ("info", "warning", "error")
HTTP_METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "DELETE", "HEAD")

MAX_SLEEP_MS = 3_600_000
MAX_MESSAGE_CHARS = 4096
MAX_URL_CHARS = 2048
MAX_ARGV_ITEMS = 64
MAX_ARG_CHARS = 4096
# Results land in the replicated execution history, so they must stay small.
MAX_RESULT_BYTES = 16_384
OUTPUT_TAIL_CHARS = 1024

DEFAULT_FAIL_MESSAGE = "fail handler: failed on purpose"

_ENTRYPOINT_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_LOG_LEVEL_NUMBERS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

logger = logging.getLogger("daemon.handlers")


class HandlerError(ValueError):
    """A handler definition is invalid or not allowed; the message is one user-facing line."""


class HandlerFailure(Exception):
    """One attempt of a handler failed; the message is one line for the execution record."""


@dataclass(frozen=True)
class HandlerPolicy:
    http_allow: tuple[str, ...] = ()
    python_allow: tuple[str, ...] = ()
    shell_enabled: bool = False
    shell_allow: tuple[str, ...] = ()
    http_timeout_s: float = 10.0


# --------------------------------------------------------------------------- parsing


def _show(value: object, limit: int = 60) -> str:
    """Render a wire value inside a one-line error message without letting it sprawl."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _type_name(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _string(kind: str, field: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str):
        raise HandlerError(f"{kind} handler: '{field}' must be a string, got {_type_name(value)}")
    if len(value) > max_chars:
        raise HandlerError(f"{kind} handler: '{field}' is longer than {max_chars} characters")
    return value


def _integer(kind: str, field: str, value: object, low: int, high: int) -> int:
    # bool is an int subclass; JSON `true` is never a sensible duration or status.
    integral_float = isinstance(value, float) and math.isfinite(value) and value.is_integer()
    if not integral_float and (not isinstance(value, int) or isinstance(value, bool)):
        raise HandlerError(f"{kind} handler: '{field}' must be an integer, got {_show(value)}")
    if not low <= value <= high:
        raise HandlerError(f"{kind} handler: '{field}' must be between {low} and {high}")
    return int(value)


def _choice(kind: str, field: str, value: object, allowed: tuple[str, ...], upper: bool) -> str:
    if isinstance(value, str):
        normalised = value.upper() if upper else value.lower()
        if normalised in allowed:
            return normalised
    raise HandlerError(f"{kind} handler: '{field}' must be one of {', '.join(allowed)}")


def _check_fields(
    kind: str, spec: Mapping[str, object], required: set[str], optional: set[str]
) -> None:
    allowed = required | optional
    for field in spec:
        if field != "kind" and field not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise HandlerError(
                f"{kind} handler: unknown field '{_show(field)}'; allowed fields: {names}"
            )
    for field in sorted(required):
        if spec.get(field) is None:
            raise HandlerError(f"{kind} handler: missing required field '{field}'")


def url_allowed(url: str, allow: tuple[str, ...]) -> bool:
    """True when ``url`` starts with an allowed prefix at a URL boundary.

    A bare prefix match would let ``http://api.example`` admit ``http://api.example.evil``
    or ``http://api.example@evil``, so the character after the prefix must end a component.
    """
    for prefix in allow:
        if not prefix or not url.startswith(prefix):
            continue
        rest = url[len(prefix) :]
        if prefix.endswith("/") or rest == "" or rest[0] in "/?#":
            return True
    return False


def _parse_noop(spec: Mapping[str, object], policy: HandlerPolicy) -> dict:
    _check_fields("noop", spec, set(), set())
    return {"kind": "noop"}


def _parse_sleep(spec: Mapping[str, object], policy: HandlerPolicy) -> dict:
    _check_fields("sleep", spec, {"ms"}, set())
    return {"kind": "sleep", "ms": _integer("sleep", "ms", spec["ms"], 0, MAX_SLEEP_MS)}


def _parse_log(spec: Mapping[str, object], policy: HandlerPolicy) -> dict:
    _check_fields("log", spec, {"message"}, {"level"})
    message = _string("log", "message", spec["message"], MAX_MESSAGE_CHARS)
    level = spec.get("level")
    level = "info" if level is None else _choice("log", "level", level, LOG_LEVELS, upper=False)
    return {"kind": "log", "message": message, "level": level}


def _parse_fail(spec: Mapping[str, object], policy: HandlerPolicy) -> dict:
    _check_fields("fail", spec, set(), {"message"})
    message = spec.get("message")
    message = (
        DEFAULT_FAIL_MESSAGE
        if message is None
        else _string("fail", "message", message, MAX_MESSAGE_CHARS)
    )
    return {"kind": "fail", "message": message}


def _parse_http(spec: Mapping[str, object], policy: HandlerPolicy) -> dict:
    _check_fields("http", spec, {"url"}, {"method", "expectStatus"})
    url = _string("http", "url", spec["url"], MAX_URL_CHARS)
    if not url.startswith(("http://", "https://")):
        raise HandlerError("http handler: 'url' must start with http:// or https://")
    try:
        httpx.URL(url)
    except Exception as exc:  # httpx raises several types for malformed URLs
        raise HandlerError(f"http handler: 'url' is not a valid URL: {_show(url)}") from exc
    if not url_allowed(url, policy.http_allow):
        raise HandlerError(
            f"http handler: url '{_show(url)}' is not allowed; "
            "add a matching prefix to handlers.http.allow in the daemon config"
        )
    method = spec.get("method")
    method = "GET" if method is None else _choice("http", "method", method, HTTP_METHODS, True)
    expect = spec.get("expectStatus")
    if expect is not None:
        expect = _integer("http", "expectStatus", expect, 100, 599)
    return {"kind": "http", "url": url, "method": method, "expectStatus": expect}


def _json_object(kind: str, field: str, value: object) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise HandlerError(f"{kind} handler: '{field}' must be an object")
    try:
        # Round-trip so the stored definition is plain JSON whatever the caller passed in.
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise HandlerError(f"{kind} handler: '{field}' must be plain JSON") from exc


def _parse_python(spec: Mapping[str, object], policy: HandlerPolicy) -> dict:
    _check_fields("python", spec, {"entrypoint"}, {"params"})
    entrypoint = _string("python", "entrypoint", spec["entrypoint"], 300)
    if not _ENTRYPOINT_RE.match(entrypoint):
        raise HandlerError("python handler: 'entrypoint' must look like 'package.module:function'")
    if entrypoint not in policy.python_allow:
        raise HandlerError(
            f"python handler: entry point '{entrypoint}' is not allowed; "
            "add it to handlers.python.allow in the daemon config"
        )
    params = spec.get("params")
    params = {} if params is None else _json_object("python", "params", params)
    return {"kind": "python", "entrypoint": entrypoint, "params": params}


def _parse_shell(spec: Mapping[str, object], policy: HandlerPolicy) -> dict:
    _check_fields("shell", spec, {"argv"}, set())
    argv = spec["argv"]
    if not isinstance(argv, list) or not argv or len(argv) > MAX_ARGV_ITEMS:
        raise HandlerError(
            f"shell handler: 'argv' must be a non-empty array of at most {MAX_ARGV_ITEMS} strings"
        )
    for arg in argv:
        _string("shell", "argv[]", arg, MAX_ARG_CHARS)
        if "\x00" in arg:
            raise HandlerError("shell handler: 'argv' items must not contain NUL characters")
    if not policy.shell_enabled:
        raise HandlerError(
            "shell handler: shell handlers are disabled; set handlers.shell.enabled "
            "and list the executable in handlers.shell.allow in the daemon config"
        )
    if argv[0] not in policy.shell_allow:
        raise HandlerError(
            f"shell handler: executable '{_show(argv[0])}' is not allowed; "
            "add it to handlers.shell.allow in the daemon config"
        )
    return {"kind": "shell", "argv": list(argv)}


_PARSERS: dict[str, Callable[[Mapping[str, object], HandlerPolicy], dict]] = {
    "noop": _parse_noop,
    "sleep": _parse_sleep,
    "log": _parse_log,
    "fail": _parse_fail,
    "http": _parse_http,
    "python": _parse_python,
    "shell": _parse_shell,
}


def parse_handler(spec: object, policy: HandlerPolicy) -> dict:
    """Validate a handler spec from the API and return its normalised, JSON-able form.

    Normalising twice gives the same dict. Raises only :class:`HandlerError`.
    """
    if isinstance(spec, str):
        if not spec.strip():
            raise HandlerError("handler must not be empty")
        # The runbook's JavaScript-looking string is stored as text to log, never run.
        return _parse_log({"message": spec}, policy)
    if not isinstance(spec, dict):
        raise HandlerError(
            f"handler must be a string or an object with a 'kind' field, got {_type_name(spec)}"
        )
    if any(not isinstance(key, str) for key in spec):
        raise HandlerError("handler field names must be strings")
    kind = spec.get("kind")
    if kind is None:
        raise HandlerError(f"handler is missing 'kind'; allowed kinds: {', '.join(HANDLER_KINDS)}")
    if not isinstance(kind, str) or kind not in _PARSERS:
        raise HandlerError(
            f"unknown handler kind '{_show(kind)}'; allowed kinds: {', '.join(HANDLER_KINDS)}"
        )
    try:
        return _PARSERS[kind](spec, policy)
    except HandlerError:
        raise
    except Exception as exc:  # a validator bug must still surface as a 400, not a 500
        raise HandlerError(f"{kind} handler: invalid definition ({type(exc).__name__})") from exc


# --------------------------------------------------------------------------- running


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
        raise HandlerFailure(f"url '{_show(url)}' is no longer allowed by handlers.http.allow")
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
        raise HandlerFailure(f"{method} {_show(url)} returned {response.status_code}, {want}")
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
    if not policy.shell_enabled or argv[0] not in policy.shell_allow:
        raise HandlerFailure(f"executable '{_show(argv[0])}' is no longer allowed by the policy")
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
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
        raise HandlerFailure(f"unknown handler kind '{_show(handler)}'")
    return _small_json(await runner(handler, policy, dict(params or {})))
