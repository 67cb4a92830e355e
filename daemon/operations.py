"""Validation of operation definitions, before anything reaches Raft.

Replicated bodies must never raise, so everything a definition can get wrong is
caught here and reported as a one-line 400.
"""

from __future__ import annotations

from typing import Any

from daemon.contract import OPERATION_ID_RULE, valid_operation_id
from daemon.executor import validate_retries
from daemon.handlers import HandlerError, HandlerPolicy, parse_handler

FIELDS = {"id", "name", "handler", "timeoutMs", "retries", "cacheTtlMs", "description"}
DEFAULT_TIMEOUT_MS = 30_000


class DefinitionError(ValueError):
    """One line, safe to show to the caller."""


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
        "timeoutMs": _int_field(body, "timeoutMs", DEFAULT_TIMEOUT_MS, 1, 3_600_000),
        "retries": retries,
        "cacheTtlMs": _int_field(body, "cacheTtlMs", 0, 0, 86_400_000),
    }
