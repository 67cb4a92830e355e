"""Fault injection on a locally managed node, for the drills: kill it, pause it.

Signals go to the pid the node manager knows, never to a name pattern, so a drill can
only touch the node it names. A pause always ends in SIGCONT (try/finally): a drill that
fails half-way must not leave a frozen node behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from console.runbooks.nodes.base import NodeManager, NodeManagerError


def _pid(manager: NodeManager, name: str) -> int:
    state = manager.status(name)
    if not state.running or state.pid is None:
        raise NodeManagerError(f"node {name} is not running; there is nothing to inject into")
    return state.pid


def kill(manager: NodeManager, name: str, timeout_s: float = 10.0) -> int:
    """SIGKILL the node (a crash, not an operator stop) and wait until it is gone."""
    pid = _pid(manager, name)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while manager.status(name).running:
        if time.monotonic() > deadline:
            raise NodeManagerError(
                f"node {name} (pid {pid}) still runs {timeout_s:.0f}s after SIGKILL"
            )
        time.sleep(0.05)
    return pid


def paused(manager: NodeManager, name: str, seconds: float, during: Callable[[], None]) -> int:
    """SIGSTOP the node, call `during` (it may observe for up to `seconds`), then SIGCONT."""
    pid = _pid(manager, name)
    os.kill(pid, signal.SIGSTOP)
    try:
        during()
    finally:
        # It may have died while paused; the verify step says so.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    return pid


FILL_NAME = "drill-fill"


def _fill_path(manager: NodeManager, name: str) -> Path:
    layout = getattr(manager, "layout", None)
    if layout is None:
        raise NodeManagerError("this node manager cannot reach a node's data directory")
    return Path(layout().data_dir(name)) / FILL_NAME


def fill(manager: NodeManager, name: str, size: int) -> int:
    """Allocate a `size`-byte file in the node's data dir (really allocated, so the
    filesystem's free space drops at once); the caller removes it with `unfill`."""
    path = _fill_path(manager, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        os.close(fd)
        unfill(manager, name)
        raise NodeManagerError(f"could not fill {name}'s disk: {exc}") from None
    os.close(fd)
    return size


def unfill(manager: NodeManager, name: str) -> bool:
    """Remove the fill file; True if there was one. Safe to repeat."""
    try:
        _fill_path(manager, name).unlink()
    except FileNotFoundError:
        return False
    return True
