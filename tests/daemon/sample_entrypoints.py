"""Entry points that tests allow-list for `python` handlers (the operator's role in production)."""

from __future__ import annotations

import asyncio
from collections import Counter

CALLS: Counter[str] = Counter()


def echo(params: dict) -> dict:
    return {"echo": params}


async def async_echo(params: dict) -> dict:
    await asyncio.sleep(0)
    return {"echo": params}


def flaky(params: dict) -> dict:
    """Fail the first `failures` calls made with this `key`, then succeed."""
    key = params["key"]
    CALLS[key] += 1
    if CALLS[key] <= params["failures"]:
        raise RuntimeError(f"transient failure {CALLS[key]}")
    return {"calls": CALLS[key]}


def count(params: dict) -> dict:
    CALLS[params["key"]] += 1
    return {"calls": CALLS[params["key"]]}


def boom(params: dict) -> None:
    raise ValueError("the widget\nexploded")


def huge(params: dict) -> str:
    return "x" * 100_000


class Gate:
    """Lets a test hold handlers open and see how many run at once, without sleeps."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = 0
        self.peak = 0
        self.started = asyncio.Condition()
        self.finished = 0

    async def wait_running(self, n: int) -> None:
        async with self.started:
            await self.started.wait_for(lambda: self.running >= n)


GATES: dict[str, Gate] = {}


async def gated(params: dict) -> dict:
    gate = GATES[params["gate"]]
    gate.running += 1
    gate.peak = max(gate.peak, gate.running)
    async with gate.started:
        gate.started.notify_all()
    try:
        await gate.release.wait()
    finally:
        gate.running -= 1
        gate.finished += 1
    return {"gate": params["gate"]}


async def hang(params: dict) -> None:
    await asyncio.Event().wait()


ORDER: list[object] = []


async def record(params: dict) -> None:
    ORDER.append(params["n"])
