"""Restart, stop and start one node of a cluster through its node manager.

- `restart_node`: drain, hand leadership away if it leads, stop, start (on a release,
  if one is named), wait until it has rejoined and caught up, undrain. A node that does
  not come up on a release is put back on the one it ran before.
- `stop_node`: hand leadership away, stop; refused when the others would not keep quorum.
  The node stays stopped (the manager does not restart an operator-stopped node).
- `start_node`: start a stopped member, wait until it has rejoined and caught up.

Step names depend only on the parameters, so a resumed run finds where it stopped."""

from __future__ import annotations

from pydantic import Field

from console.clusters.daemon_client import DaemonClient
from console.runbooks import gates
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import (
    Action,
    NodeName,
    Params,
    Step,
    checked_member,
    find_member,
    quorum_reasons,
)
from console.runbooks.live import ClusterView


class RestartParams(Params):
    node: NodeName
    release: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        description="start it from this verified release (default: what it runs now)",
    )


class StopStartParams(Params):
    node: NodeName


def _manager_reasons(client: DaemonClient) -> list[str]:
    cluster = getattr(client, "cluster", None)
    why = lifecycle.manager_reason(cluster) if cluster is not None else None
    return [why] if why else []


def _stop_reasons(view: ClusterView, name: str) -> list[str]:
    left = sum(1 for m in view.members if m.name != name and m.reachable)
    if left < view.quorum_size:
        return [
            f"stopping {name} would leave {left} of {view.cluster_size} nodes reachable; "
            f"the cluster needs {view.quorum_size} for quorum"
        ]
    return []


class RestartNode(Action):
    name = "restart_node"
    label = "Restart node"
    Params = RestartParams

    def check(self, view: ClusterView, params: RestartParams, client: DaemonClient) -> list[str]:
        member, own, reasons = checked_member(view, params.node, client)
        reasons += quorum_reasons(view) + _manager_reasons(client)
        if member is None:
            return reasons
        reasons += _stop_reasons(view, member.name)
        if params.release is not None:
            enabled = own.code_version if own is not None else None
            reasons += lifecycle.release_reasons(params.release, enabled)
        return reasons

    def plan(self, view: ClusterView, params: RestartParams) -> list[Step]:
        name = params.node
        view.by_name[name]  # a KeyError when it left the cluster: preflight says so
        on = f" on release {params.release}" if params.release else ""
        return [
            Step(f"drain {name}", lifecycle.drain(name), gates=(gates.has_quorum(),)),
            Step(f"hand leadership away from {name} if it leads", lifecycle.hand_leadership_away(name)),
            Step(
                f"stop {name}",
                lifecycle.stop(name),
                gates=(gates.has_quorum(), gates.quorum_survives_stopping(name)),
            ),
            Step(f"start {name}{on}", lifecycle.start(name, params.release)),
            Step(f"wait until {name} has rejoined and caught up", lifecycle.wait_caught_up(name)),
            Step(f"undrain {name}", lifecycle.undrain(name)),
        ]  # fmt: skip


class StopNode(Action):
    name = "stop_node"
    label = "Stop node"
    Params = StopStartParams

    def check(self, view: ClusterView, params: StopStartParams, client: DaemonClient) -> list[str]:
        member, _own, reasons = checked_member(view, params.node, client)
        reasons += quorum_reasons(view) + _manager_reasons(client)
        if member is not None:
            reasons += _stop_reasons(view, member.name)
        return reasons

    def plan(self, view: ClusterView, params: StopStartParams) -> list[Step]:
        name = params.node
        view.by_name[name]
        return [
            Step(f"hand leadership away from {name} if it leads", lifecycle.hand_leadership_away(name)),
            Step(
                f"stop {name}",
                lifecycle.stop(name),
                gates=(gates.has_quorum(), gates.quorum_survives_stopping(name)),
            ),
        ]  # fmt: skip


class StartNode(Action):
    name = "start_node"
    label = "Start node"
    Params = StopStartParams

    def check(self, view: ClusterView, params: StopStartParams, client: DaemonClient) -> list[str]:
        member, missing = find_member(view, params.node)
        if member is None:
            return [missing or ""]
        if member.reachable:
            return [f"node {member.name} is running and reachable; restart it instead"]
        return _manager_reasons(client)

    def plan(self, view: ClusterView, params: StopStartParams) -> list[Step]:
        name = params.node
        view.by_name[name]
        return [
            Step(f"start {name}", lifecycle.start(name)),
            Step(f"wait until {name} has rejoined and caught up", lifecycle.wait_caught_up(name)),
        ]
