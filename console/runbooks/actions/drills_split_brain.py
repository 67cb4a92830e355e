"""The split-brain playbook's two actions: `isolate_node` ("isolate the minority": cut a
node off so a majority elsewhere keeps the cluster) and `heal_node` (undo the cut and
wait until it has rejoined and caught up).

The cut is `nodes.partition`'s (iptables on loopback scoped to the node's Raft port,
locally); it stays until `heal_node`, which works from any process because the rules
themselves are the only record of the cut.
"""

from __future__ import annotations

import time
from typing import Any

from console.clusters.daemon_client import DaemonClient
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import (
    Action,
    NodeName,
    Params,
    Step,
    StepContext,
    StepFailed,
    find_member,
)
from console.runbooks.actions.drills_partition import target_reasons
from console.runbooks.actions.drills_support import new_leader
from console.runbooks.live import ClusterView
from console.runbooks.nodes import NodeManagerError, partition

MAJORITY_TIMEOUT_S = 30.0


class NodeParams(Params):
    node: NodeName


def _majority_reasons(view: ClusterView, name: str) -> list[str]:
    left = sum(1 for m in view.members if m.name != name and m.reachable)
    if left < view.quorum_size:
        return [
            f"isolating {name} would leave {left} of {view.cluster_size} nodes together; "
            f"the cluster needs {view.quorum_size} for quorum"
        ]
    return []


class IsolateNode(Action):
    name = "isolate_node"
    label = "Isolate node (split brain)"
    Params = NodeParams

    def check(self, view: ClusterView, params: NodeParams, client: DaemonClient) -> list[str]:
        member, missing = find_member(view, params.node)
        if member is None:
            return [missing or ""]
        return _majority_reasons(view, member.name) + target_reasons(client, member.name)

    def plan(self, view: ClusterView, params: NodeParams) -> list[Step]:
        name = params.node
        return [
            Step(f"cut {name}'s Raft links", _cut(name)),
            Step(f"wait until the others lead without {name}", _majority_without(name)),
        ]


class HealNode(Action):
    name = "heal_node"
    label = "Heal node (split brain)"
    Params = NodeParams

    def check(self, view: ClusterView, params: NodeParams, client: DaemonClient) -> list[str]:
        member, missing = find_member(view, params.node)
        if member is None:
            return [missing or ""]
        cluster = getattr(client, "cluster", None)
        why = lifecycle.manager_reason(cluster) if cluster is not None else None
        return [why] if why else []

    def plan(self, view: ClusterView, params: NodeParams) -> list[Step]:
        name = params.node
        return [
            Step(f"heal {name}'s Raft links", _heal(name)),
            Step(f"wait until {name} has rejoined and caught up", lifecycle.wait_caught_up(name)),
        ]


def _cut(name: str) -> Any:
    def run(ctx: StepContext) -> dict[str, Any]:
        try:
            return {"cut": name, "raftPort": partition.cut(lifecycle.manager(ctx), name)}
        except NodeManagerError as exc:
            raise StepFailed(str(exc)) from None

    return run


def _majority_without(name: str) -> Any:
    def run(ctx: StepContext) -> dict[str, Any]:
        return ctx.wait_until(
            new_leader(ctx, name, time.monotonic()),
            MAJORITY_TIMEOUT_S,
            f"a leader other than {name}",
        )

    return run


def _heal(name: str) -> Any:
    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        try:
            port = partition.heal(nodes, name)
            return {"healed": name, "raftPort": port, "stillCut": partition.is_cut(nodes, name)}
        except NodeManagerError as exc:
            raise StepFailed(str(exc)) from None

    return run
