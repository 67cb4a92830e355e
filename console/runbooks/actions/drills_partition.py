"""`drill_partition_node`: cut a node's Raft links for a bounded time, then heal.

Locally the cut is iptables rules on loopback scoped to the node's Raft port (see
`nodes.partition`); it severs every link only of the node with the lowest Raft address,
so that is the node a drill partitions (named or not), and another name is refused.
A partitioned leader must be replaced within the election bound; a partitioned
follower must cost nothing. The heal runs in a `finally`: a failing drill never leaves
a node cut off.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from console.clusters.daemon_client import DaemonClient
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import NodeName, Step, StepContext, StepFailed
from console.runbooks.actions.drills import (
    ELECTION_BOUND_S,
    DrillAction,
    DrillParams,
    drill_reasons,
)
from console.runbooks.actions.drills_support import (
    Expectation,
    expect,
    new_leader,
    verify_and_judge,
    view_or_fail,
    with_writer,
)
from console.runbooks.live import ClusterView
from console.runbooks.nodes import NodeManager, NodeManagerError, manager_for, partition


class PartitionParams(DrillParams):
    node: NodeName | None = Field(None, description="default: the node a port cut isolates")
    seconds: float = Field(5.0, ge=1.0, le=60.0, description="how long the node stays cut off")


def cuttable(nodes: NodeManager) -> str:
    names = nodes.names()
    return next(n for n in names if partition.cut_isolates(nodes, n))


def target_reasons(client: DaemonClient, node: str | None) -> list[str]:
    cluster = getattr(client, "cluster", None)
    if cluster is None:
        return []
    try:
        nodes = manager_for(cluster)
        if node is not None and node not in nodes.names():
            return [f"node {node} is not managed here (nodes: {', '.join(nodes.names())})"]
        if node is not None and not partition.cut_isolates(nodes, node):
            return [
                f"locally a cut isolates only the node with the lowest Raft address; "
                f"partition {cuttable(nodes)} instead (or name no node)"
            ]
    except NodeManagerError as exc:
        return [str(exc)]
    return []


def expectation(seconds: float) -> Expectation:
    """A cut node still answers HTTP, so it is not "unreachable": a cut leader is
    replaced, a cut follower falls behind the leader (its lag goes high)."""
    return Expectation(
        fault=f"cut the node's Raft links for {seconds:g}s, then heal",
        events=(),
        recovery_s=ELECTION_BOUND_S,
        if_leader=("leader.changed",),
        if_follower=("lag.high",),
    )


class DrillPartitionNode(DrillAction):
    name = "drill_partition_node"
    label = "Drill: partition a node"
    Params = PartitionParams

    def check(self, view: ClusterView, params: PartitionParams, client: DaemonClient) -> list[str]:
        return drill_reasons(view, client, params.confirm_production) + target_reasons(
            client, params.node
        )

    def plan(self, view: ClusterView, params: PartitionParams) -> list[Step]:
        who = params.node or "the lowest-address node"
        return [
            Step("state the expectation", expect(expectation(params.seconds))),
            Step(f"partition {who} for {params.seconds:g}s, measure, heal", _partition(params)),
            Step("verify and judge", verify_and_judge(expectation(params.seconds))),
        ]


def _partition(params: PartitionParams) -> Any:
    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        try:
            target = params.node or cuttable(nodes)
        except (NodeManagerError, StopIteration) as exc:
            raise StepFailed(f"no node to partition: {exc}") from None

        def inject_observe_heal() -> dict[str, Any]:
            led = view_or_fail(ctx).leader == target
            observed: dict[str, Any] = {"partitioned": target, "target": target}
            observed["wasLeader"] = led
            started = time.monotonic()
            end = started + params.seconds
            try:
                observed["raftPort"] = partition.cut(nodes, target)
                if led:
                    bound = params.seconds + ELECTION_BOUND_S
                    observed.update(
                        ctx.wait_until(new_leader(ctx, target, started), bound, "a new leader")
                    )
                ctx.wait_until(
                    lambda: {} if time.monotonic() >= end else None,
                    params.seconds + 5,
                    "the cut to end",
                )
                if not led:
                    seen = view_or_fail(ctx)
                    observed["quorumKept"] = seen.has_quorum and seen.leader != target
                    observed["recoveryS"] = 0.0 if observed["quorumKept"] else None
            except NodeManagerError as exc:
                raise StepFailed(str(exc)) from None
            finally:
                partition.heal(nodes, target)
            lifecycle.wait_caught_up(target)(ctx)
            return observed

        return with_writer(ctx, inject_observe_heal)

    return run
