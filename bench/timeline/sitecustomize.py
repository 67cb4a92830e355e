"""EXPERIMENT ONLY: timestamps along a write's path inside each node, for
``python -m bench.timeline_report``. Put first on the nodes' path by
``BENCH_NODE_PYTHONPATH=bench/timeline python -m bench.run latency ...``; it changes no
file in daemon/. Each node appends ``<perf_counter_ns> <thread id> <mark>`` lines to
``$BENCH_TIMELINE_DIR/node-<pid>.txt`` (default /tmp/bench-timeline). perf_counter is
CLOCK_MONOTONIC, one clock for every process on the machine, so marks from the three
nodes line up. Each mark costs a few microseconds; compare segments, not totals.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from pathlib import Path
from typing import Any

from pysyncobj import syncobj, transport
from uvicorn.protocols.http import httptools_impl

_marks: list[tuple[int, int, str]] = []
_clock = time.perf_counter_ns
_out = Path(os.environ.get("BENCH_TIMELINE_DIR", "/tmp/bench-timeline"))
_out.mkdir(parents=True, exist_ok=True)
_file = _out / f"node-{os.getpid()}.txt"


def mark(name: str) -> None:
    _marks.append((_clock(), threading.get_ident(), name))


def _dump() -> None:
    # Rewritten whole: a node stopped with SIGKILL keeps what the last dump held.
    lines = [f"{t} {tid} {name}\n" for t, tid, name in list(_marks)]
    _file.write_text("".join(lines))


def _dump_every_second() -> None:
    while True:
        time.sleep(1.0)
        _dump()


atexit.register(_dump)
threading.Thread(target=_dump_every_second, daemon=True, name="timeline-dump").start()


def _around(cls: type, attr: str, label: Any) -> None:
    original = getattr(cls, attr)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        mark(label(args) if callable(label) else label)
        return original(self, *args, **kwargs)

    setattr(cls, attr, wrapper)


def _message_type(args: tuple) -> str:
    message = args[1] if len(args) > 1 else None
    return message.get("type", "?") if isinstance(message, dict) else "?"


# A command handed to pysyncobj (on the event loop, or a forwarded one on the tick thread).
_around(syncobj.SyncObj, "_applyCommand", "submit")
_around(transport.TCPTransport, "send", lambda a: "send:" + _message_type(a))
_around(transport.Transport, "_onMessageReceived", lambda a: "recv:" + _message_type(a))
_around(syncobj.SyncObj, "_SyncObj__doApplyCommand", "apply")
# The tick thread waking the event loop (pysyncobj's callback -> call_soon_threadsafe).
_around(__import__("asyncio").base_events.BaseEventLoop, "call_soon_threadsafe", "wake_loop")
_around(httptools_impl.HttpToolsProtocol, "data_received", "http_in")

_send = httptools_impl.RequestResponseCycle.send


async def _send_marked(self: Any, message: dict) -> None:
    if message.get("type") == "http.response.body" and not message.get("more_body"):
        mark("http_out")
    await _send(self, message)


httptools_impl.RequestResponseCycle.send = _send_marked
