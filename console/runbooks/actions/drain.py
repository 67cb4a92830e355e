"""Drain a node: it stops taking new work, finishes what it has, and says so.

Draining keeps membership, but a drained node serves nothing, so a majority of the
members must keep serving afterwards: draining the last non-drained nodes is refused,
and the same rule is checked again (a gate) just before the node is asked."""

from __future__ import annotations

from typing import Any

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.runbooks import conf, gates
from console.runbooks.actions.base import (
    Action,
    NodeName,
    Params,
    Step,
    StepContext,
    StepFailed,
    StepRun,
    checked_member,
    quorum_reasons,
)
from console.runbooks.live import ClusterView, Member, url_of


class NodeParams(Params):
    node: NodeName


class Drain(Action):
    name = "drain"
    label = "Drain"
    Params = NodeParams

    def check(self, view: ClusterView, params: NodeParams, client: DaemonClient) -> list[str]:
        member, own, reasons = checked_member(view, params.node, client)
        reasons += quorum_reasons(view)
        if member is None or own is None:
            return reasons
        if own.draining:
            reasons.append(f"node {member.name} is already draining")
        serving = [m for m in view.members if m.reachable and not m.draining]
        left = len([m for m in serving if m.name != member.name])
        if left < view.quorum_size:
            reasons.append(
                f"draining {member.name} would leave {left} of {view.cluster_size} nodes serving; "
                f"a majority ({view.quorum_size}) must keep serving"
            )
        return reasons

    def plan(self, view: ClusterView, params: NodeParams) -> list[Step]:
        member = view.by_name[params.node]
        return [
            Step(
                f"ask {member.name} to drain",
                _ask(member),
                gates=(gates.majority_serving_without(member.name),),
            ),
            Step(f"wait for {member.name}'s work to finish", _wait_idle(member)),
            Step(f"confirm {member.name} reports draining", _confirm(member)),
        ]


def _ask(member: Member) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        answer = ctx.client.post(url_of(member), "/admin/drain", json=None)
        if not answer.get("draining"):
            raise StepFailed(f"{member.name} did not start draining: {answer}")
        return {"active": answer.get("active"), "queued": answer.get("queued")}

    return run


def _wait_idle(member: Member) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        def idle() -> dict[str, Any] | None:
            queue = ctx.client.get(url_of(member), "/queue")
            if queue.get("active") == 0 and queue.get("queued") == 0:
                return {"active": 0, "queued": 0}
            return None

        return ctx.wait_until(idle, conf.drain_timeout_s(), f"{member.name}'s queue to empty")

    return run


def _confirm(member: Member) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        own = ctx.client.get(url_of(member), "/health/node")
        if not own.get("draining"):
            raise StepFailed(f"{member.name} does not report draining")
        # Readiness is what load balancers act on: it must say 503 now.
        try:
            ctx.client.get(url_of(member), "/health/ready")
        except DaemonError as err:
            if err.status == 503:
                return {"draining": True, "ready": False}
            raise
        raise StepFailed(f"{member.name} still answers ready on /health/ready")

    return run
