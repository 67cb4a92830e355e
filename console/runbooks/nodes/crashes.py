"""Restart local nodes that crashed, as a kubelet would: with a back-off, journaled.

Called by the collector every tick. A node that is not running and was not stopped by
an operator (or by a lifecycle action, which marks it stopped while it works) crashed:
it is started again without waiting for it (a tick must stay short), after 2, 4, 8 …
up to MAX_BACKOFF_S seconds between attempts. The back-off resets once the node has
stayed up for STABLE_AFTER_S. The state lives in the layout root (`manager.json`), so
a restarted collector keeps counting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from console.clusters.models import Cluster
from console.runbooks.nodes import NodeManagerError, manager_for
from console.runbooks.nodes.local import LocalNodeManager

MAX_BACKOFF_S = 60.0
STABLE_AFTER_S = 60.0
LOG_LINES = 10

Journal = Callable[..., Any]


def backoff_s(attempts: int) -> float:
    return min(MAX_BACKOFF_S, 2.0 ** max(1, attempts))


def restart_crashed(cluster: Cluster, journal: Journal, now: float | None = None) -> list[str]:
    """Start the crashed nodes whose back-off has passed; the names started."""
    if cluster.node_manager != "local":
        return []
    try:
        nodes = manager_for(cluster)
        names = nodes.names()
    except NodeManagerError:
        return []  # no local layout (yet): nothing this console runs
    assert isinstance(nodes, LocalNodeManager)
    now = time.time() if now is None else now
    started = []
    for name in names:
        state = nodes.status(name)
        crash = nodes.crash_record(name)
        if state.running:
            if crash and now - crash.get("at", now) >= STABLE_AFTER_S:
                nodes.set_crash_record(name, None)
            continue
        if state.stopped_by_operator or now < crash.get("next_at", 0):
            continue
        attempt = int(crash.get("attempts", 0)) + 1
        last_lines = state.log_tail[-LOG_LINES:]
        try:
            pid = nodes.process(name).start()
        except Exception as exc:  # the layout or environment is broken: say so, retry later
            pid, error = None, str(exc)
        else:
            error = ""
        nodes.set_crash_record(
            name, {"attempts": attempt, "at": now, "next_at": now + backoff_s(attempt)}
        )
        if error:
            journal(
                "node.crash_restart_failed",
                node=name,
                attempt=attempt,
                retry_in_s=backoff_s(attempt),
                log_tail=[*last_lines, error],
            )
            continue
        journal("node.crash_restarted", node=name, attempt=attempt, pid=pid, log_tail=last_lines)
        started.append(name)
    return started
