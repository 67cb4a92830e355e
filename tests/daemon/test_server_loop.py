"""The node's HTTP server loop: it wakes once a second when idle, keeps the Date header
current, and stops as soon as it is told to (a real uvicorn.Server subclass, not served)."""

from __future__ import annotations

import asyncio
import time

import uvicorn

from daemon import server


async def _app(scope: dict, receive: object, send: object) -> None:  # never called
    raise AssertionError("no request is served here")


def loop_server() -> tuple[server._Server, list[int]]:
    config = uvicorn.Config(_app, lifespan="off")
    config.load()
    srv = server._Server(config)
    ticks: list[int] = []
    on_tick = srv.on_tick

    async def counted(counter: int) -> bool:
        ticks.append(counter)
        return await on_tick(counter)

    srv.on_tick = counted  # type: ignore[method-assign]
    return srv, ticks


def test_an_idle_server_loop_wakes_about_once_a_second_not_ten_times() -> None:
    srv, ticks = loop_server()

    async def watch() -> None:
        loop_task = asyncio.create_task(srv.main_loop())
        await asyncio.sleep(2.5)  # the window measured, not a wait for a condition
        srv.should_exit = True
        await asyncio.wait_for(loop_task, 1)

    asyncio.run(watch())
    # uvicorn's own loop would have ticked 25 times; this one ticks at 0, 1, 2 s and on exit.
    assert 3 <= len(ticks) <= 5, ticks
    # Every tick refreshes the Date header (uvicorn does that when counter % 10 == 0).
    assert all(counter % 10 == 0 for counter in ticks), ticks
    assert any(name == b"date" for name, _ in srv.server_state.default_headers)


def test_the_server_loop_stops_at_once_when_told_to_exit() -> None:
    srv, ticks = loop_server()

    async def stop_soon() -> float:
        loop_task = asyncio.create_task(srv.main_loop())
        while not ticks:
            await asyncio.sleep(0.01)
        asked_at = time.monotonic()
        srv.should_exit = True
        await asyncio.wait_for(loop_task, 1)
        return time.monotonic() - asked_at

    # Not a whole idle wake (1 s): the exit request wakes the loop itself.
    assert asyncio.run(stop_soon()) < server.IDLE_WAKE_S / 2
