"""Validation of operation definitions, before anything reaches Raft.

Replicated bodies must never raise, so everything a definition can get wrong is
caught here and reported as a one-line 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

from daemon.contract import OPERATION_ID_RULE, valid_operation_id
from daemon.executor import DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS
from daemon.handlers import HandlerError, HandlerPolicy, parse_handler

FIELDS = {"id", "name", "handler", "timeoutMs", "retries", "cacheTtlMs", "description"}
MAX_TIMEOUT_MS = 3_600_000
MAX_CACHE_TTL_MS = 86_400_000
MAX_RETRIES = 10
MAX_BACKOFF_MS = 3_600_000


class DefinitionError(ValueError):
    """One line, safe to show to the caller."""


def _number(field_name: str, value: object, low: float, high: float, integer: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and isinstance(value, float):
        ok = math.isfinite(value) and (value.is_integer() or not integer)
    if not ok or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        raise HandlerError(f"'{field_name}' must be {kind} between {low:g} and {high:g}")
    return int(value) if integer else float(value)


def validate_retries(retries: object) -> dict:
    """Normalise an operation's ``retries`` (None means no retries); raise HandlerError."""
    if retries is None:
        return dict(DEFAULT_RETRIES)
    if not isinstance(retries, dict):
        raise HandlerError(
            "'retries' must be an object like "
            '{"max": 3, "backoffMs": 100, "multiplier": 2.0, "maxBackoffMs": 5000}'
        )
    unknown = sorted(str(k) for k in retries if k not in DEFAULT_RETRIES)
    if unknown:
        allowed = ", ".join(DEFAULT_RETRIES)
        raise HandlerError(f"unknown field 'retries.{unknown[0]}'; allowed fields: {allowed}")
    merged = {**DEFAULT_RETRIES, **{k: v for k, v in retries.items() if v is not None}}
    return {
        "max": _number("retries.max", merged["max"], 0, MAX_RETRIES, integer=True),
        "backoffMs": _number("retries.backoffMs", merged["backoffMs"], 0, MAX_BACKOFF_MS, False),
        "multiplier": _number("retries.multiplier", merged["multiplier"], 1, 100, False),
        "maxBackoffMs": _number(
            "retries.maxBackoffMs", merged["maxBackoffMs"], 0, MAX_BACKOFF_MS, False
        ),
    }


def validate_timeout_ms(value: object) -> int:
    """Normalise an operation's ``timeoutMs`` (None means the 30 s default)."""
    if value is None:
        return DEFAULT_TIMEOUT_MS
    return int(_number("timeoutMs", value, 1, MAX_TIMEOUT_MS, integer=True))


def validate_cache_ttl_ms(value: object) -> int:
    """Normalise an operation's ``cacheTtlMs`` (None or 0 means results are not cached)."""
    if value is None:
        return 0
    return int(_number("cacheTtlMs", value, 0, MAX_CACHE_TTL_MS, integer=True))


def _int_field(body: dict, key: str, default: int, lo: int, hi: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionError(f"{key} must be an integer")
    if not lo <= value <= hi:
        raise DefinitionError(f"{key} must be between {lo} and {hi}")
    return value


def validate_definition(body: Any, policy: HandlerPolicy) -> dict:
    if not isinstance(body, dict):
        raise DefinitionError("body must be a JSON object with id, name and handler")
    unknown = set(body) - FIELDS
    if unknown:
        raise DefinitionError(
            f"unknown field '{sorted(unknown)[0]}'; allowed: {', '.join(sorted(FIELDS))}"
        )
    op_id = body.get("id")
    if not valid_operation_id(op_id):
        raise DefinitionError(f"id must be {OPERATION_ID_RULE}")
    name = body.get("name", op_id)
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise DefinitionError("name must be a string of 1-200 characters")
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise DefinitionError("description must be a string of at most 2000 characters")
    if "handler" not in body:
        raise DefinitionError("handler is required")
    try:
        handler = parse_handler(body["handler"], policy)
        retries = validate_retries(body.get("retries"))
    except HandlerError as exc:
        raise DefinitionError(str(exc)) from None
    return {
        "id": op_id,
        "name": name,
        "description": description,
        "handler": handler,
        "timeoutMs": _int_field(body, "timeoutMs", DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS),
        "retries": retries,
        "cacheTtlMs": _int_field(body, "cacheTtlMs", 0, 0, MAX_CACHE_TTL_MS),
    }


class LimitError(ValueError):
    """A write would grow the replicated state past a configured limit; one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json_bytes(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def check_definition_limits(
    op: dict, existing_ids: int, is_new: bool, max_operations: int, max_bytes: int
) -> None:
    """Refuse a definition that would grow the state past limits.maxOperations or whose
    stored form exceeds limits.maxDefinitionBytes. Every operation keeps up to
    HISTORY_PER_OPERATION records, so the operation count bounds the history too."""
    size = _json_bytes(op)
    if size > max_bytes:
        raise LimitError(
            413, f"definition is {size} bytes; limits.maxDefinitionBytes is {max_bytes}"
        )
    if is_new and existing_ids >= max_operations:
        raise LimitError(
            409,
            f"limits.maxOperations ({max_operations}) reached; delete an operation first",
        )


def check_params_limit(params: object, max_bytes: int) -> None:
    if params is not None and (size := _json_bytes(params)) > max_bytes:
        raise LimitError(413, f"params are {size} bytes; limits.maxParamsBytes is {max_bytes}")
