"""Reading and guarding one request: roles and hosts, JSON bodies, query numbers, ids,
and the one-line error answer. Used by every route in daemon/api.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from daemon.contract import valid_operation_id
from daemon.executor import Draining, QueueFull
from daemon.guards import HostCheck, json_body_refusal
from daemon.node import ApiError, DaemonNode

log = logging.getLogger("daemon.api")

Handler = Callable[[Request], Awaitable[Response]]
MAX_PAGE = 1000


def error(status: int, message: str, headers: dict | None = None, **extra: Any) -> JSONResponse:
    # The contract promises one line: messages can quote caller input (ids, node
    # names, path segments), so escape line breaks and anything not encodable.
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def guarded(node: DaemonNode, role: str, hosts: HostCheck) -> Callable[[Handler], Handler]:
    """Authorise, then turn every expected failure into a one-line JSON error."""

    def wrap(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if not hosts.allows(request.headers.get("host")):
                host = (request.headers.get("host") or "")[:80]
                return error(
                    421, f"Host {host!r} is not a name of this node; add it to http.allowedHosts"
                )
            refusal = json_body_refusal(
                request.method,
                request.headers.get("content-type"),
                request.headers.get("content-length"),
            )
            if refusal:
                return error(415, refusal)
            denied = node.tokens.check(request.headers.get("authorization"), role)
            if denied is not None:
                status, message = denied
                headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
                return error(status, message, headers)
            try:
                return await handler(request)
            except ApiError as exc:
                return error(exc.status, exc.message, exc.headers, **exc.extra)
            except QueueFull as exc:
                retry = str(max(1, int(exc.retry_after_s)))
                return error(
                    429, "queue is full; retry later", {"Retry-After": retry}, retryAfter=int(retry)
                )
            except Draining:
                return error(503, f"node {node.name} is draining; send work to another node")

        return endpoint

    return wrap


async def read_json(request: Request, node: DaemonNode, required: bool = True) -> Any:
    limit = node.config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body too large: limit is {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"body too large: limit is {limit} bytes")
    if not body.strip():
        if required:
            raise ApiError(400, "a JSON body is required")
        return None
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "malformed JSON: nested too deeply") from None
    try:
        # A lone surrogate (a \ud800 escape) parses, but no response holding it can
        # be encoded: stored in the replicated state, it would break every read of it.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "malformed JSON: a string holds an unpaired surrogate") from None
    except RecursionError:
        raise ApiError(400, "malformed JSON: nested too deeply") from None
    return value


def int_param(request: Request, key: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter '{key}' must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"query parameter '{key}' must be between {lo} and {hi}")
    return value


def op_id_of(request: Request) -> str:
    op_id = request.path_params["op_id"]
    if not valid_operation_id(op_id):
        raise ApiError(400, f"invalid operation id {op_id[:80]!r}")
    return op_id
