"""What every action shares: steps, the context a step runs in, node lookups."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from console.clusters.daemon_client import DaemonClient
from console.runbooks import conf
from console.runbooks.live import ClusterView, Member, probe


class StepFailed(Exception):
    """A step could not do its job; the message is shown to the operator as is."""


@dataclass
class StepContext:
    client: DaemonClient
    # Proves the worker is alive; raises if the run is no longer ours (reaped as stale).
    heartbeat: Callable[[], None]

    def wait_until(
        self, condition: Callable[[], dict[str, Any] | None], timeout_s: float, what: str
    ) -> dict[str, Any]:
        """Poll `condition` (a detail dict when met, None otherwise) until `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.heartbeat()
            detail = condition()
            if detail is not None:
                return detail
            if time.monotonic() > deadline:
                raise StepFailed(f"gave up after {timeout_s:.0f}s waiting for {what}")
            time.sleep(conf.POLL_INTERVAL_S)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[StepContext], dict[str, Any]]


def node_name(params: dict[str, Any], key: str) -> tuple[dict[str, Any], list[str]]:
    """Clean a params dict that holds exactly one node name under `key`."""
    if not isinstance(params, dict):
        return {}, ["params must be an object"]
    unknown = sorted(set(params) - {key})
    if unknown:
        return {}, [f"unknown parameter {unknown[0]!r}; this action takes only {key!r}"]
    value = params.get(key)
    if not isinstance(value, str) or not value.strip():
        return {}, [f"{key} is required: the name of a node"]
    if len(value) > 63 or "\x00" in value:
        return {}, [f"{key} must be a node name (at most 63 characters)"]
    return {key: value.strip()}, []


def find_member(view: ClusterView, name: str) -> tuple[Member | None, str | None]:
    member = view.members.get(name)
    if member is None:
        names = ", ".join(sorted(view.members)) or "none"
        return None, f"node {name} is not a member of this cluster (members: {names})"
    return member, None


def reachable_reasons(
    view: ClusterView, member: Member, client: DaemonClient
) -> tuple[dict[str, Any] | None, list[str]]:
    """The member's own view if both its peers and the console reach it, else reasons."""
    if not member.reachable:
        return None, [f"node {member.name} unreachable (as seen by {view.answered_by})"]
    own, why_not = probe(client, member)
    return own, [why_not] if why_not else []


def checked_member(
    view: ClusterView, params: dict[str, Any], key: str, client: DaemonClient
) -> tuple[Member | None, dict[str, Any] | None, list[str]]:
    """Look the named member up and make sure it answers: (member, its view, reasons)."""
    member, missing = find_member(view, params[key])
    if member is None:
        return None, None, [missing or ""]
    own, reasons = reachable_reasons(view, member, client)
    return member, own, reasons


def quorum_reasons(view: ClusterView) -> list[str]:
    if not view.has_quorum or not view.leader:
        return [f"the cluster has no quorum right now (as seen by {view.answered_by})"]
    return []
