"""Node managers: start, stop, restart, inspect and re-point one node of a cluster, and
grow or shrink the set of node processes. The Cluster row names its manager.

The interface is what the lifecycle actions (restart, stop, start, scale, and the
upgrade of the next issue) stand on; membership changes (Raft) are the actions' job,
through the daemon's admin API, not the manager's: a manager only runs processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class NodeManagerError(Exception):
    """The manager cannot do what was asked; the message is one line for the operator."""


@dataclass(frozen=True)
class NodeState:
    name: str
    running: bool
    pid: int | None
    release: str  # the release it is started from; "" = the console's own checkout
    stopped_by_operator: bool
    url: str
    raft_address: str
    log_tail: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StartResult:
    name: str
    ready: bool
    pid: int | None
    log_tail: list[str]


class NodeManager(Protocol):
    def names(self) -> list[str]: ...
    def status(self, name: str) -> NodeState: ...
    def start(self, name: str, timeout_s: float = 60.0) -> StartResult: ...
    def stop(self, name: str) -> None: ...
    def restart(self, name: str, timeout_s: float = 60.0) -> StartResult: ...
    def run_on(self, name: str, release: str | None, timeout_s: float = 60.0) -> StartResult: ...
    def add_node(self, release: str | None = None) -> NodeState: ...
    def remove_node(self, name: str) -> None: ...
