"""Drills: inject a fault on purpose, measure the recovery, heal, verify, judge.

- `drill_kill_leader`: SIGKILL the leader; expect a new leader within the election
  bound; restart the killed node and wait until it has caught up.
- `drill_pause_node`: SIGSTOP a node for a bounded time, then SIGCONT; pausing the
  leader must produce a new leader, pausing a follower must not cost quorum.

Preflight: a leader with quorum, fault tolerance ≥ 1 (one node may fail), a node
manager that can drive the processes; the framework already refuses a second run.
Each run's steps carry the expectation, the measurement and the verdict (see
`drills_support`); the drills page lists them.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from pydantic import Field

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
    quorum_reasons,
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
from console.runbooks.nodes import NodeManagerError, faults

ELECTION_BOUND_S = 10.0  # a new leader within this after the leader vanishes
DRILL_NAMES = ("drill_kill_leader", "drill_pause_node", "drill_partition_node", "drill_fill_disk")


def production_reasons(client: DaemonClient, confirmed: bool) -> list[str]:
    """A drill on a cluster named in settings.DRILL_PRODUCTION_CLUSTERS needs
    `confirm_production`."""
    cluster = getattr(client, "cluster", None)
    production = getattr(settings, "DRILL_PRODUCTION_CLUSTERS", ())
    if cluster is not None and cluster.name in production and not confirmed:
        return [
            f"cluster {cluster.name} is a production cluster: a drill there must be "
            "confirmed by an admin (confirm_production: true)"
        ]
    return []


def drill_reasons(view: ClusterView, client: DaemonClient, confirmed: bool = False) -> list[str]:
    reasons = quorum_reasons(view) + production_reasons(client, confirmed)
    tolerance = (view.cluster_size - 1) // 2
    reachable = sum(1 for m in view.members if m.reachable)
    if tolerance < 1 or reachable < view.cluster_size:
        reasons.append(
            f"a drill needs fault tolerance ≥ 1 with every node up; the cluster has "
            f"{view.cluster_size} nodes ({reachable} reachable), it tolerates {tolerance}"
        )
    cluster = getattr(client, "cluster", None)
    why = lifecycle.manager_reason(cluster) if cluster is not None else None
    return reasons + ([why] if why else [])


class DrillParams(Params):
    confirm_production: bool = Field(False, description="an admin's go-ahead on production")


class PauseParams(DrillParams):
    node: NodeName
    seconds: float = Field(5.0, ge=1.0, le=60.0, description="how long the node stays paused")


# The collector journals the node gone and back and the new leader; the reachable-nodes
# alert goes pending as soon as it counts one node short (it fires only after its `for:`).
KILL_LEADER = Expectation(
    fault="SIGKILL the leader process",
    events=("leader.changed", "node.unreachable", "node.recovered"),
    recovery_s=ELECTION_BOUND_S,
    alerts=("cluster_size",),
)


class DrillAction(Action):
    """A drill: on a production cluster it runs only with `confirm_production`, which
    only an admin may give."""

    def authority_reasons(self, params: dict, is_admin: bool) -> list[str]:
        if params.get("confirm_production") and not is_admin:
            return ["confirming a run on a production cluster needs the admin role"]
        return []


class DrillKillLeader(DrillAction):
    name = "drill_kill_leader"
    label = "Drill: kill the leader"
    Params = DrillParams

    def check(self, view: ClusterView, params: DrillParams, client: DaemonClient) -> list[str]:
        return drill_reasons(view, client, params.confirm_production)

    def plan(self, view: ClusterView, params: DrillParams) -> list[Step]:
        return [
            Step("state the expectation", expect(KILL_LEADER)),
            Step("kill the leader, measure, restart it", _kill_leader),
            Step("verify and judge", verify_and_judge(KILL_LEADER)),
        ]


def _kill_leader(ctx: StepContext) -> dict[str, Any]:
    def inject_observe_heal() -> dict[str, Any]:
        old = view_or_fail(ctx).leader
        nodes = lifecycle.manager(ctx)
        started = time.monotonic()
        try:
            pid = faults.kill(nodes, old)
        except NodeManagerError as exc:
            raise StepFailed(str(exc)) from None
        try:
            found = ctx.wait_until(
                new_leader(ctx, old, started), 3 * ELECTION_BOUND_S, "a new leader"
            )
        finally:
            lifecycle.start(old)(ctx)  # heal even when no leader came: never leave it dead
        lifecycle.wait_caught_up(old)(ctx)
        return {"killed": old, "target": old, "wasLeader": True, "pid": pid, **found}

    return with_writer(ctx, inject_observe_heal)


def one_node_out(fault: str) -> Expectation:
    """What taking one node out for a while should do: it drops out and comes back, and
    a new leader is elected within the bound if it was the leader."""
    return Expectation(
        fault=fault,
        events=("node.unreachable", "node.recovered"),
        recovery_s=ELECTION_BOUND_S,
        alerts=("cluster_size",),
        if_leader=("leader.changed",),
    )


def pause_expectation(seconds: float) -> Expectation:
    return one_node_out(f"SIGSTOP the node for {seconds:g}s, then SIGCONT")


class DrillPauseNode(DrillAction):
    name = "drill_pause_node"
    label = "Drill: pause a node"
    Params = PauseParams

    def check(self, view: ClusterView, params: PauseParams, client: DaemonClient) -> list[str]:
        member, missing = find_member(view, params.node)
        reasons = drill_reasons(view, client, params.confirm_production)
        return ([missing or ""] if member is None else []) + reasons

    def plan(self, view: ClusterView, params: PauseParams) -> list[Step]:
        view.by_name[params.node]
        expectation = pause_expectation(params.seconds)
        return [
            Step("state the expectation", expect(expectation)),
            Step(f"pause {params.node} for {params.seconds:g}s, measure", _pause(params)),
            Step("verify and judge", verify_and_judge(expectation)),
        ]


def _pause(params: PauseParams) -> Any:
    def run(ctx: StepContext) -> dict[str, Any]:
        def inject_observe_heal() -> dict[str, Any]:
            led = view_or_fail(ctx).leader == params.node
            observed: dict[str, Any] = {"paused": params.node, "target": params.node}
            observed["wasLeader"] = led
            started = time.monotonic()

            def during() -> None:
                if led:
                    observed.update(
                        ctx.wait_until(
                            new_leader(ctx, params.node, started),
                            params.seconds + ELECTION_BOUND_S,
                            "a new leader",
                        )
                    )
                end = started + params.seconds  # the bound: the pause lasts what was asked
                ctx.wait_until(
                    lambda: {} if time.monotonic() >= end else None,
                    params.seconds + 5,
                    "the pause to end",
                )
                if not led:
                    seen = view_or_fail(ctx)
                    observed.update(
                        {
                            "quorumKept": seen.has_quorum,
                            "recoveryS": 0.0 if seen.has_quorum else None,
                        }
                    )

            try:
                observed["pid"] = faults.paused(
                    lifecycle.manager(ctx), params.node, params.seconds, during
                )
            except NodeManagerError as exc:
                raise StepFailed(str(exc)) from None
            lifecycle.wait_caught_up(params.node)(ctx)
            return observed

        return with_writer(ctx, inject_observe_heal)

    return run
