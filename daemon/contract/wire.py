"""The contract's vocabulary: operation ids, handler kinds, statuses, windows, quorum
arithmetic, wire time, and the field readers the answer parsers share."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# ---- operations -------------------------------------------------------------

OPERATION_ID_MAX_LENGTH = 128
OPERATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""An operation id: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit."""
OPERATION_ID_RE = re.compile(OPERATION_ID_PATTERN)
OPERATION_ID_RULE = (
    "1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
)

HANDLER_KINDS: tuple[str, ...] = ("noop", "sleep", "log", "fail", "http", "python", "shell")
"""Every handler kind a node may run; which of http/python/shell are enabled is per node."""

EXECUTION_STATUSES: tuple[str, ...] = ("success", "failure", "timeout")

METRICS_WINDOWS: dict[str, int] = {
    "5m": 5,
    "1h": 60,
    "24h": 24 * 60,
    "7d": 7 * 24 * 60,
    "month": 31 * 24 * 60,
}
"""GET /metrics/{window}: window name -> minutes."""
NODE_ROLES: tuple[str, ...] = ("leader", "follower", "candidate")
UNKNOWN_ROLE = "unknown"  # a member the answering node could not reach


def valid_operation_id(value: object) -> bool:
    return isinstance(value, str) and OPERATION_ID_RE.fullmatch(value) is not None


# ---- quorum arithmetic ------------------------------------------------------


def quorum_size(members: int) -> int:
    """Members needed for a majority of `members` voting members."""
    return members // 2 + 1


def fault_tolerance(members: int, reachable: int) -> int:
    """How many of the `reachable` members can still be lost with a majority kept."""
    return max(0, reachable - quorum_size(members))


# ---- time ---------------------------------------------------------------------


def format_time(epoch_s: float) -> str:
    """ISO-8601 UTC with milliseconds and a Z: the format of every time in the API."""
    stamp = datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def parse_time(text: object) -> datetime:
    """An aware UTC datetime from a wire time; a time without an offset is UTC."""
    if not isinstance(text, str):
        raise ContractError(f"a time must be an ISO-8601 string, got {_kind(text)}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(f"not an ISO-8601 time: {text[:40]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# ---- errors and field readers -----------------------------------------------


class ContractError(ValueError):
    """An answer that breaks the daemon's contract; the message is one line."""


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(f"{what} must be a JSON object, got {_kind(value)}")
    return value


class _Reader:
    """Typed reads of one JSON object's fields, naming the field in every error."""

    def __init__(self, body: object, what: str) -> None:
        self.body = _object(body, what)
        self.what = what

    def _fail(self, key: str, expected: str) -> ContractError:
        value = self.body.get(key)
        got = "missing" if key not in self.body else f"got {_kind(value)}"
        return ContractError(f"{self.what}: '{key}' must be {expected} ({got})")

    def text(self, key: str) -> str:
        value = self.body.get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string or null")
        return value

    def integer(self, key: str) -> int:
        value = self.body.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        if self.body.get(key) is None:
            return None
        return self.integer(key)

    def number(self, key: str) -> float:
        value = self.body.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise self._fail(key, "a number")
        return float(value)

    def opt_number(self, key: str) -> float | None:
        if self.body.get(key) is None:
            return None
        return self.number(key)

    def flag(self, key: str) -> bool:
        value = self.body.get(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value
