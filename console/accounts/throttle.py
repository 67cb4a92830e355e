"""Login throttling (issue 14, point 7), in Django's cache.

Policy: after FAILURES_PER_USER wrong passwords for one username, or FAILURES_PER_ADDRESS
from one client address, within WINDOW_S, that username (or address) is locked out for
LOCKOUT_S; during a lockout even the right password is refused, so guessing gains
nothing. A success clears the username's count. Each lockout is journaled once
(`login.locked`). The counts live in the default cache: Redis when REDIS_URL is set, so
every console process shares them; per process without it (`make run`'s one daphne).
While Redis does not answer, each process counts in its own memory ("local"): sign-ins
stay possible and still throttled, per process, and the console logs it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.cache import caches
from django.http import HttpRequest
from redis.exceptions import RedisError

from console.events import journal
from daemon.ratelog import RateLimitedLog

FAILURES_PER_USER = 5
FAILURES_PER_ADDRESS = 20
WINDOW_S = 15 * 60
LOCKOUT_S = 15 * 60
LOCKED_MESSAGE = "Too many failed sign-ins. Wait 15 minutes and try again."
WARN_EVERY_S = 60.0

_cache_failed = RateLimitedLog(logging.getLogger("console.accounts"), WARN_EVERY_S)


def _cache(op: str, *args: Any) -> Any:
    """The shared cache's answer, or this process's own cache's while the shared one
    fails (a ValueError from incr is an answer: the key expired)."""
    try:
        return getattr(caches["default"], op)(*args)
    except (RedisError, OSError) as exc:
        _cache_failed.warning(
            "login throttle: the shared cache failed (%s); counting per process", exc
        )
        return getattr(caches["local"], op)(*args)


def _key(counter: str, value: str) -> str:
    digest = hashlib.sha256(value.lower().encode()).hexdigest()[:32]
    return f"login-throttle:{counter}:{digest}"


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says it is.
    return request.META.get("REMOTE_ADDR") or "unknown"


def locked(username: str, address: str) -> bool:
    return bool(
        _cache("get", _key("lock-user", username)) or _cache("get", _key("lock-addr", address))
    )


def _count(counter: str, value: str) -> int:
    key = _key(counter, value)
    _cache("add", key, 0, WINDOW_S)
    try:
        return _cache("incr", key)
    except ValueError:  # expired between add and incr
        _cache("set", key, 1, WINDOW_S)
        return 1


def record_failure(username: str, address: str) -> None:
    for counter, value, limit in (
        ("fail-user", username, FAILURES_PER_USER),
        ("fail-addr", address, FAILURES_PER_ADDRESS),
    ):
        if _count(counter, value) >= limit:
            lock = "lock-user" if counter == "fail-user" else "lock-addr"
            if _cache("add", _key(lock, value), 1, LOCKOUT_S):
                journal.append(
                    "login.locked",
                    actor=username or "anonymous",
                    user=username,
                    address=address,
                    scope="user" if lock == "lock-user" else "address",
                )


def record_success(username: str) -> None:
    _cache("delete", _key("fail-user", username))
