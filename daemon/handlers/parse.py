"""Handler definitions: validated once, into the plain JSON-able dict that is replicated.

Nothing here evaluates text it was sent: the runbook's ``"console.log(\\"success\\")"``
becomes a ``log`` handler whose message is that string.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping

import httpx

from daemon.contract import HANDLER_KINDS
from daemon.handlers.policy import (
    DEFAULT_FAIL_MESSAGE,
    HTTP_METHODS,
    LOG_LEVELS,
    MAX_ARG_CHARS,
    MAX_ARGV_ITEMS,
    MAX_MESSAGE_CHARS,
    MAX_SLEEP_MS,
    MAX_URL_CHARS,
    HandlerError,
    HandlerPolicy,
    shell_allowed,
    show,
    url_allowed,
)

_ENTRYPOINT_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


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
        raise HandlerError(f"{kind} handler: '{field}' must be an integer, got {show(value)}")
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
                f"{kind} handler: unknown field '{show(field)}'; allowed fields: {names}"
            )
    for field in sorted(required):
        if spec.get(field) is None:
            raise HandlerError(f"{kind} handler: missing required field '{field}'")


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
        raise HandlerError(f"http handler: 'url' is not a valid URL: {show(url)}") from exc
    if not url_allowed(url, policy.http_allow):
        raise HandlerError(
            f"http handler: url '{show(url)}' is not allowed; "
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
    if not shell_allowed(argv, policy.shell_allow):
        raise HandlerError(
            f"shell handler: command '{show(' '.join(argv))}' matches no template in "
            "handlers.shell.allow (whole command lines; '*' stands for one argument)"
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
            f"unknown handler kind '{show(kind)}'; allowed kinds: {', '.join(HANDLER_KINDS)}"
        )
    try:
        return _PARSERS[kind](spec, policy)
    except HandlerError:
        raise
    except Exception as exc:  # a validator bug must still surface as a 400, not a 500
        raise HandlerError(f"{kind} handler: invalid definition ({type(exc).__name__})") from exc
