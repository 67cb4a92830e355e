"""The executor: concurrency bound, FIFO queue, timeouts, retries, drain and caching.

Handlers that must stay open are held on an asyncio gate (see sample_entrypoints), so no
test waits for time to pass to know what state the executor is in.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator

import pytest

from daemon.cache import ResultCache
from daemon.executor import (
    DEFAULT_RETRIES,
    Draining,
    Executor,
    QueueFull,
    backoff_delays_ms,
)
from daemon.handlers import HandlerError, HandlerPolicy, parse_handler
from daemon.operations import validate_cache_ttl_ms, validate_retries, validate_timeout_ms
from tests.daemon import sample_entrypoints as sample

EP = "tests.daemon.sample_entrypoints"
POLICY = HandlerPolicy(
    python_allow=tuple(f"{EP}:{f}" for f in ("gated", "flaky", "count", "record", "hang"))
)
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def make_op(op_id: str, handler: object, **fields: object) -> dict:
    return {
        "id": op_id,
        "handler": parse_handler(handler, POLICY),
        "timeoutMs": fields.get("timeoutMs", 30_000),
        "retries": validate_retries(fields.get("retries")),
        "cacheTtlMs": fields.get("cacheTtlMs", 0),
    }


def python_op(op_id: str, func: str, params: dict | None = None, **fields: object) -> dict:
    spec = {"kind": "python", "entrypoint": f"{EP}:{func}", "params": params or {}}
    return make_op(op_id, spec, **fields)


def make_executor(max_concurrent: int = 2, queue_size: int = 10, cache_size: int = 100) -> Executor:
    return Executor(max_concurrent, queue_size, POLICY, ResultCache(cache_size))


@pytest.fixture
def gate() -> Iterator[sample.Gate]:
    sample.GATES["g"] = gate = sample.Gate()
    yield gate
    sample.GATES.pop("g", None)


async def until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until `condition` holds: scheduling steps, not wall-clock time."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def spawn(executor: Executor, op: dict, params: dict | None = None) -> asyncio.Task:
    return asyncio.create_task(executor.execute(op, params))


GATED = python_op("held", "gated", {"gate": "g"})


# ------------------------------------------------------------------ basics


async def test_successful_execution_reports_one_attempt_and_its_times() -> None:
    outcome = await make_executor().execute(make_op("op", {"kind": "noop"}))
    assert (outcome.status, outcome.attempts, outcome.error, outcome.cached) == (
        "success",
        1,
        None,
        False,
    )
    assert outcome.started_at <= outcome.finished_at
    assert outcome.duration_ms >= 0
    record = outcome.to_dict()
    assert ISO_UTC.match(record["startedAt"]) and ISO_UTC.match(record["finishedAt"])
    assert record["status"] == "success" and record["result"] is None


async def test_handler_failure_becomes_a_failure_outcome_not_an_exception() -> None:
    outcome = await make_executor().execute(make_op("op", {"kind": "fail", "message": "drill"}))
    assert (outcome.status, outcome.error, outcome.attempts) == ("failure", "drill", 1)


async def test_a_policy_tightened_after_definition_stops_the_handler() -> None:
    executor = make_executor()
    op = python_op("op", "count", {"key": "policy"})
    executor.policy = HandlerPolicy()
    outcome = await executor.execute(op)
    assert outcome.status == "failure"
    assert "no longer in handlers.python.allow" in (outcome.error or "")


# ------------------------------------------------------------------ concurrency and queue


async def test_no_more_than_max_concurrent_handlers_run_at_once(gate: sample.Gate) -> None:
    executor = make_executor(max_concurrent=2, queue_size=10)
    tasks = [spawn(executor, GATED) for _ in range(5)]
    await gate.wait_running(2)
    await until(lambda: executor.queued_count == 3)
    assert (executor.active_count, gate.running) == (2, 2)

    gate.release.set()
    outcomes = await asyncio.gather(*tasks)

    assert gate.peak == 2
    assert [o.status for o in outcomes] == ["success"] * 5
    assert await executor.wait_idle(timeout_s=1)


async def test_queued_executions_start_in_arrival_order(gate: sample.Gate) -> None:
    sample.ORDER.clear()
    executor = make_executor(max_concurrent=1, queue_size=5)
    holder = spawn(executor, GATED)
    await gate.wait_running(1)
    waiters = [spawn(executor, python_op(f"op{n}", "record", {"n": n})) for n in range(4)]
    await until(lambda: executor.queued_count == 4)

    gate.release.set()
    await asyncio.gather(holder, *waiters)

    assert sample.ORDER == [0, 1, 2, 3]


async def test_full_queue_raises_queue_full_with_a_retry_after(gate: sample.Gate) -> None:
    executor = make_executor(max_concurrent=1, queue_size=1)
    running, queued = spawn(executor, GATED), spawn(executor, GATED)
    await until(lambda: executor.active_count == 1 and executor.queued_count == 1)

    with pytest.raises(QueueFull) as caught:
        await executor.execute(GATED)

    assert caught.value.retry_after_s >= 1
    assert "queue is full (1/1 waiting)" in str(caught.value)
    gate.release.set()
    assert [o.status for o in await asyncio.gather(running, queued)] == ["success", "success"]


async def test_queue_size_zero_refuses_as_soon_as_every_slot_is_busy(gate: sample.Gate) -> None:
    executor = make_executor(max_concurrent=1, queue_size=0)
    running = spawn(executor, GATED)
    await gate.wait_running(1)
    with pytest.raises(QueueFull):
        await executor.execute(make_op("op", {"kind": "noop"}))
    gate.release.set()
    await running


async def test_a_cancelled_waiter_gives_back_its_queue_place(gate: sample.Gate) -> None:
    executor = make_executor(max_concurrent=1, queue_size=1)
    running, queued = spawn(executor, GATED), spawn(executor, GATED)
    await until(lambda: executor.queued_count == 1)

    queued.cancel()
    await asyncio.gather(queued, return_exceptions=True)

    assert executor.queued_count == 0
    replacement = spawn(executor, make_op("op", {"kind": "noop"}))
    gate.release.set()
    assert (await replacement).status == "success"
    await running
    assert (executor.active_count, executor.queued_count) == (0, 0)


async def test_queue_snapshot_lists_running_then_queued_items(gate: sample.Gate) -> None:
    executor = make_executor(max_concurrent=1, queue_size=3)
    tasks = [spawn(executor, GATED), spawn(executor, python_op("next", "gated", {"gate": "g"}))]
    await until(lambda: executor.queued_count == 1 and executor.active_count == 1)

    snapshot = executor.queue_snapshot()

    assert {k: v for k, v in snapshot.items() if k != "items"} == {
        "active": 1,
        "queued": 1,
        "capacity": 3,
        "maxConcurrent": 1,
        "draining": False,
    }
    assert [(i["operationId"], i["state"]) for i in snapshot["items"]] == [
        ("held", "running"),
        ("next", "queued"),
    ]
    assert all(ISO_UTC.match(i["since"]) for i in snapshot["items"])
    gate.release.set()
    await asyncio.gather(*tasks)


async def test_growing_max_concurrent_starts_queued_work_at_once(gate: sample.Gate) -> None:
    executor = make_executor(max_concurrent=1, queue_size=5)
    tasks = [spawn(executor, GATED) for _ in range(3)]
    await until(lambda: executor.queued_count == 2)

    executor.resize(max_concurrent=3, queue_size=5)

    await gate.wait_running(3)
    assert executor.queued_count == 0
    gate.release.set()
    await asyncio.gather(*tasks)


# ------------------------------------------------------------------ timeouts and retries


async def test_an_attempt_over_its_timeout_is_recorded_as_timeout() -> None:
    op = python_op("slow", "hang", timeoutMs=20)
    outcome = await make_executor().execute(op)
    assert (outcome.status, outcome.attempts) == ("timeout", 1)
    assert outcome.error == "timed out after 20 ms"


async def test_timeouts_are_retried_and_the_last_attempt_decides_the_status() -> None:
    retries = {"max": 2, "backoffMs": 0}
    outcome = await make_executor().execute(
        python_op("slow", "hang", timeoutMs=10, retries=retries)
    )
    assert (outcome.status, outcome.attempts) == ("timeout", 3)


async def test_failures_are_retried_until_a_later_attempt_succeeds() -> None:
    params = {"key": "retry-until-success", "failures": 2}
    sample.CALLS.pop(params["key"], None)
    op = python_op("flaky", "flaky", params, retries={"max": 3, "backoffMs": 1})

    outcome = await make_executor().execute(op)

    assert (outcome.status, outcome.attempts, outcome.error) == ("success", 3, None)
    assert outcome.result == {"calls": 3}


async def test_exhausted_retries_report_the_last_failure() -> None:
    params = {"key": "retry-exhausted", "failures": 10}
    sample.CALLS.pop(params["key"], None)
    op = python_op("flaky", "flaky", params, retries={"max": 2, "backoffMs": 1})

    outcome = await make_executor().execute(op)

    assert (outcome.status, outcome.attempts) == ("failure", 3)
    assert outcome.error == "RuntimeError: transient failure 3"


def test_backoff_grows_by_the_multiplier_and_is_capped() -> None:
    retries = validate_retries({"max": 5, "backoffMs": 100, "multiplier": 2, "maxBackoffMs": 500})
    assert backoff_delays_ms(retries) == [100, 200, 400, 500, 500]
    assert backoff_delays_ms(validate_retries(None)) == []


def test_retries_are_normalised_with_defaults() -> None:
    assert validate_retries(None) == DEFAULT_RETRIES
    assert validate_retries({"max": 3}) == {**DEFAULT_RETRIES, "max": 3}
    assert validate_retries({"max": 3.0, "multiplier": 1})["max"] == 3


@pytest.mark.parametrize(
    "retries",
    [
        [],
        "3",
        {"max": -1},
        {"max": 11},
        {"max": 1.5},
        {"max": True},
        {"backoffMs": -5},
        {"multiplier": 0.5},
        {"maxBackoffMs": float("inf")},
        {"backoffMs": float("nan")},
        {"jitter": 1},
    ],
)
def test_bad_retries_raise_handler_error(retries: object) -> None:
    with pytest.raises(HandlerError):
        validate_retries(retries)


def test_timeout_and_cache_ttl_are_validated_with_defaults() -> None:
    assert (validate_timeout_ms(None), validate_cache_ttl_ms(None)) == (30_000, 0)
    assert (validate_timeout_ms(250), validate_cache_ttl_ms(60_000)) == (250, 60_000)
    for check, bad in (
        (validate_timeout_ms, 0),
        (validate_timeout_ms, "5"),
        (validate_cache_ttl_ms, -1),
    ):
        with pytest.raises(HandlerError):
            check(bad)


# ------------------------------------------------------------------ drain


async def test_draining_refuses_new_work_while_admitted_work_finishes(gate: sample.Gate) -> None:
    executor = make_executor(max_concurrent=1, queue_size=5)
    running, queued = spawn(executor, GATED), spawn(executor, GATED)
    await until(lambda: executor.queued_count == 1)

    executor.drain()

    with pytest.raises(Draining):
        await executor.execute(make_op("op", {"kind": "noop"}))
    assert executor.queue_snapshot()["draining"] is True
    assert not await executor.wait_idle(timeout_s=0.01)
    gate.release.set()
    assert await executor.wait_idle(timeout_s=5)
    assert [o.status for o in await asyncio.gather(running, queued)] == ["success", "success"]

    executor.undrain()
    assert (await executor.execute(make_op("op", {"kind": "noop"}))).status == "success"


async def test_draining_also_refuses_cached_results() -> None:
    executor = make_executor()
    op = make_op("op", {"kind": "noop"}, cacheTtlMs=60_000)
    await executor.execute(op)
    executor.drain()
    with pytest.raises(Draining):
        await executor.execute(op)


# ------------------------------------------------------------------ cache


def counting_op(key: str, **fields: object) -> dict:
    sample.CALLS.pop(key, None)
    return python_op("cached", "count", {"key": key}, cacheTtlMs=60_000, **fields)


async def test_cached_result_is_served_without_running_the_handler() -> None:
    executor = make_executor()
    op = counting_op("cache-hit")

    first = await executor.execute(op)
    second = await executor.execute(op)

    assert (first.cached, first.attempts) == (False, 1)
    assert (second.status, second.cached, second.attempts) == ("success", True, 0)
    assert second.result == first.result == {"calls": 1}
    assert sample.CALLS["cache-hit"] == 1
    assert executor.cache.stats() | {"hitRate": None} == {
        "size": 1,
        "maxSize": 100,
        "hits": 1,
        "misses": 1,
        "hitRate": None,
    }


async def test_cache_entries_are_keyed_by_params_and_by_definition() -> None:
    executor = make_executor()
    op = counting_op("cache-keys")
    await executor.execute(op)

    assert (await executor.execute(op, {"x": 1})).cached is False
    assert (await executor.execute(op, {"x": 1})).cached is True
    redefined = {**op, "handler": {**op["handler"], "params": {"key": "cache-keys", "v": 2}}}
    assert (await executor.execute(redefined)).cached is False


async def test_invalidating_an_operation_drops_its_cached_results() -> None:
    executor = make_executor()
    op = counting_op("cache-invalidate")
    await executor.execute(op)
    await executor.execute(op, {"x": 1})

    assert executor.invalidate_operation("cached") == 2
    assert (await executor.execute(op)).cached is False


async def test_failures_are_not_cached() -> None:
    executor = make_executor()
    op = make_op("op", {"kind": "fail"}, cacheTtlMs=60_000)
    await executor.execute(op)
    assert (await executor.execute(op)).attempts == 1
    assert executor.cache.size == 0


async def test_a_zero_size_cache_always_runs_the_handler() -> None:
    executor = make_executor(cache_size=0)
    op = counting_op("cache-disabled")
    await executor.execute(op)
    await executor.execute(op)
    assert sample.CALLS["cache-disabled"] == 2
