"""Runs operations on this node: bounded concurrency, a bounded FIFO queue, timeouts,
retries with backoff, result caching and drain.

Semantics worth knowing:
- A caller first takes a free slot, else a place at the back of the queue, else gets
  :class:`QueueFull` (HTTP 429). A freed slot is handed straight to the head of the
  queue, so newcomers cannot overtake waiting callers.
- The slot is held for the whole execution, backoff pauses included, so
  ``maxConcurrent`` bounds the executions in progress, not just running attempts.
- Every attempt runs under the operation's ``timeoutMs``. A timed-out attempt is
  retried like a failure while retries remain; the final status is the last attempt's.
- Handler errors never raise out of :meth:`Executor.execute`; they become an
  :class:`Outcome` with status ``failure`` or ``timeout`` and a one-line ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field

from daemon.cache import ResultCache
from daemon.contract import format_time
from daemon.handlers import HandlerFailure, HandlerPolicy, run_handler

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_RETRIES: dict = {"max": 0, "backoffMs": 100.0, "multiplier": 2.0, "maxBackoffMs": 5000.0}
MAX_SNAPSHOT_ITEMS = 100
MAX_RETRY_AFTER_S = 60
# Weight of the newest execution in the moving average that sizes Retry-After.
HOLD_TIME_WEIGHT = 0.2

log = logging.getLogger("daemon.executor")


class QueueFull(Exception):
    """No free slot and no room in the queue (HTTP 429 with ``Retry-After: retry_after_s``)."""

    def __init__(self, retry_after_s: int, queued: int, capacity: int) -> None:
        super().__init__(
            f"execution queue is full ({queued}/{capacity} waiting); retry in {retry_after_s}s"
        )
        self.retry_after_s = retry_after_s


class Draining(Exception):
    """This node is draining and takes no new executions (HTTP 503)."""

    def __init__(self, message: str = "node is draining; it accepts no new executions") -> None:
        super().__init__(message)


@dataclass
class Outcome:
    status: str  # "success" | "failure" | "timeout"
    duration_ms: float
    attempts: int
    started_at: float
    finished_at: float
    result: object = None
    error: str | None = None
    cached: bool = False
    queued_ms: float = 0.0

    def to_dict(self) -> dict:
        """The execution-record fields this node knows (the API adds seq, id, operationId, node)."""
        return {
            "status": self.status,
            "duration": round(self.duration_ms, 3),
            "startedAt": format_time(self.started_at),
            "finishedAt": format_time(self.finished_at),
            "attempts": self.attempts,
            "cached": self.cached,
            "error": self.error,
            "result": self.result,
            "queuedMs": round(self.queued_ms, 3),
        }


# --------------------------------------------------------------------------- retries and cache


def backoff_delays_ms(retries: dict) -> list[float]:
    """The pause before each retry: backoffMs * multiplier**n, capped at maxBackoffMs.

    No jitter: one node retries one execution, so there is no herd to spread out, and a
    deterministic schedule is easier to reason about in the execution history.
    """
    base, factor, cap = retries["backoffMs"], retries["multiplier"], retries["maxBackoffMs"]
    return [min(base * factor**n, cap) for n in range(int(retries["max"]))]


def cache_key(op: dict, params: dict | None) -> str:
    """``<operation id>?<digest of handler and params>``.

    The handler is in the digest so a result computed by an old definition that finishes
    after a redefinition can never be served for the new one.
    """
    material = json.dumps(
        {"handler": op.get("handler"), "params": params or {}},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return f"{op['id']}?{hashlib.sha256(material.encode()).hexdigest()[:16]}"


# --------------------------------------------------------------------------- executor


@dataclass(eq=False)
class _Ticket:
    """One execution holding or waiting for a slot."""

    number: int
    operation_id: str
    since: float  # epoch seconds of entering the current state
    state: str = "queued"
    started_mono: float = 0.0
    grant: asyncio.Future[None] | None = field(default=None, repr=False)


class Executor:
    def __init__(
        self, max_concurrent: int, queue_size: int, policy: HandlerPolicy, cache: ResultCache
    ) -> None:
        self._check_limits(max_concurrent, queue_size)
        # Public so a config reload can swap the policy; handlers re-check it per attempt.
        self.policy = policy
        self.cache = cache
        self._max_concurrent = max_concurrent
        self._queue_size = queue_size
        self._active = 0
        self._waiting: deque[_Ticket] = deque()
        self._tickets: dict[int, _Ticket] = {}
        self._numbers = itertools.count()
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._avg_hold_s: float | None = None

    # ---- public state

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def active_count(self) -> int:
        return self._active

    @property
    def queued_count(self) -> int:
        return len(self._waiting)

    @property
    def max_concurrent(self) -> int:
        return self._max_concurrent

    @property
    def queue_size(self) -> int:
        return self._queue_size

    def drain(self) -> None:
        self._draining = True

    def undrain(self) -> None:
        self._draining = False

    def resize(self, max_concurrent: int, queue_size: int) -> None:
        """Apply new limits. Work already admitted keeps its place; a shrink takes effect
        as executions finish, a growth starts queued work at once."""
        self._check_limits(max_concurrent, queue_size)
        self._max_concurrent = max_concurrent
        self._queue_size = queue_size
        self._wake()

    def invalidate_operation(self, operation_id: str) -> int:
        """Drop cached results of one operation (call on redefinition and deletion)."""
        return self.cache.invalidate(f"{operation_id}?")

    async def wait_idle(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not self._is_idle():
                    await self._idle.wait()
        return self._is_idle()

    def queue_snapshot(self) -> dict:
        running = (t for t in self._tickets.values() if t.state == "running")
        items = [
            {"operationId": t.operation_id, "state": t.state, "since": format_time(t.since)}
            for t in itertools.islice(itertools.chain(running, self._waiting), MAX_SNAPSHOT_ITEMS)
        ]
        return {
            "active": self._active,
            "queued": len(self._waiting),
            "capacity": self._queue_size,
            "maxConcurrent": self._max_concurrent,
            "draining": self._draining,
            "items": items,
        }

    # ---- execution

    async def execute(self, op: dict, params: dict | None = None) -> Outcome:
        if self._draining:
            raise Draining()
        params = dict(params or {})
        ttl_ms = int(op.get("cacheTtlMs") or 0)
        key = cache_key(op, params) if ttl_ms > 0 else None
        if key is not None:
            hit = self._cached_outcome(key)
            if hit is not None:
                return hit

        ticket = self._admit(str(op["id"]))
        queued_from = time.monotonic()
        try:
            if ticket.grant is not None:
                await ticket.grant
            queued_ms = (time.monotonic() - queued_from) * 1000.0
            outcome = await self._run(op, params, queued_ms)
        finally:
            self._release(ticket)

        if key is not None and outcome.status == "success":
            self.cache.put(key, outcome.result, ttl_ms, time.monotonic() * 1000.0)
        return outcome

    def _cached_outcome(self, key: str) -> Outcome | None:
        started_mono, now = time.monotonic(), time.time()
        hit, value = self.cache.get(key, started_mono * 1000.0)
        if not hit:
            return None
        return Outcome(
            status="success",
            duration_ms=(time.monotonic() - started_mono) * 1000.0,
            attempts=0,
            started_at=now,
            finished_at=now,
            result=value,
            cached=True,
        )

    async def _run(self, op: dict, params: dict, queued_ms: float) -> Outcome:
        timeout_ms = int(op.get("timeoutMs") or DEFAULT_TIMEOUT_MS)
        delays = backoff_delays_ms(op.get("retries") or DEFAULT_RETRIES)
        started_at, started_mono = time.time(), time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            status, result, error = await self._attempt(op["handler"], timeout_ms, params)
            if status == "success" or attempts > len(delays):
                break
            await asyncio.sleep(delays[attempts - 1] / 1000.0)
        return Outcome(
            status=status,
            duration_ms=(time.monotonic() - started_mono) * 1000.0,
            attempts=attempts,
            started_at=started_at,
            finished_at=time.time(),
            result=result,
            error=error,
            queued_ms=queued_ms,
        )

    async def _attempt(
        self, handler: dict, timeout_ms: int, params: dict
    ) -> tuple[str, object, str | None]:
        try:
            async with asyncio.timeout(timeout_ms / 1000.0):
                result = await run_handler(handler, self.policy, params)
        except TimeoutError:
            return "timeout", None, f"timed out after {timeout_ms} ms"
        except HandlerFailure as exc:
            return "failure", None, str(exc) or "handler failed"
        except Exception as exc:  # a bug in a handler runner must not fail the request
            log.exception("handler %s raised unexpectedly", handler.get("kind"))
            return "failure", None, " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        return "success", result, None

    # ---- slots and queue

    @staticmethod
    def _check_limits(max_concurrent: int, queue_size: int) -> None:
        if max_concurrent < 1 or queue_size < 0:
            raise ValueError("max_concurrent must be >= 1 and queue_size >= 0")

    def _is_idle(self) -> bool:
        return self._active == 0 and not self._waiting

    def _admit(self, operation_id: str) -> _Ticket:
        """Take a free slot or a queue place, or raise QueueFull."""
        ticket = _Ticket(next(self._numbers), operation_id, since=time.time())
        if self._active < self._max_concurrent and not self._waiting:
            self._start(ticket)
        elif len(self._waiting) >= self._queue_size:
            raise QueueFull(self._retry_after_s(), len(self._waiting), self._queue_size)
        else:
            ticket.grant = asyncio.get_running_loop().create_future()
            self._waiting.append(ticket)
        self._tickets[ticket.number] = ticket
        self._idle.clear()
        return ticket

    def _start(self, ticket: _Ticket) -> None:
        self._active += 1
        ticket.state, ticket.since, ticket.started_mono = "running", time.time(), time.monotonic()

    def _wake(self) -> None:
        """Hand free slots to the head of the queue (the slot is counted before it wakes)."""
        while self._waiting and self._active < self._max_concurrent:
            ticket = self._waiting.popleft()
            if ticket.grant is None or ticket.grant.done():
                continue  # its caller was cancelled while waiting
            self._start(ticket)
            ticket.grant.set_result(None)

    def _release(self, ticket: _Ticket) -> None:
        self._tickets.pop(ticket.number, None)
        if ticket.state == "running":
            self._active -= 1
            self._note_hold_time(time.monotonic() - ticket.started_mono)
        else:
            with contextlib.suppress(ValueError):
                self._waiting.remove(ticket)
        self._wake()
        if self._is_idle():
            self._idle.set()

    def _note_hold_time(self, seconds: float) -> None:
        if self._avg_hold_s is None:
            self._avg_hold_s = seconds
        else:
            self._avg_hold_s += HOLD_TIME_WEIGHT * (seconds - self._avg_hold_s)

    def _retry_after_s(self) -> int:
        """Roughly how long until the work ahead of a new caller has cleared."""
        per_execution = self._avg_hold_s if self._avg_hold_s is not None else 1.0
        ahead = len(self._waiting) + 1
        estimate = per_execution * ahead / self._max_concurrent
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(estimate)))
