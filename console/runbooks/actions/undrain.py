"""Undrain a node: it takes work again once it reports ready."""

from __future__ import annotations

from typing import Any

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.runbooks.actions.base import (
    Action,
    Step,
    StepContext,
    StepFailed,
    StepRun,
    checked_member,
)
from console.runbooks.actions.drain import NodeParams
from console.runbooks.live import ClusterView, Member, url_of

READY_TIMEOUT_S = 30.0


class Undrain(Action):
    name = "undrain"
    label = "Undrain"
    Params = NodeParams

    def check(self, view: ClusterView, params: NodeParams, client: DaemonClient) -> list[str]:
        member, own, reasons = checked_member(view, params.node, client)
        if member is not None and own is not None and not own.draining:
            reasons.append(f"node {member.name} is not draining")
        return reasons

    def plan(self, view: ClusterView, params: NodeParams) -> list[Step]:
        member = view.by_name[params.node]
        return [
            Step(f"ask {member.name} to undrain", _ask(member)),
            Step(f"confirm {member.name} is ready", _confirm(member)),
        ]


def _ask(member: Member) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        answer = ctx.client.post(url_of(member), "/admin/undrain", json=None)
        if answer.get("draining"):
            raise StepFailed(f"{member.name} is still draining: {answer}")
        return {"draining": False}

    return run


def _confirm(member: Member) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            if ctx.client.get(url_of(member), "/health/node").get("draining"):
                return None
            try:
                ctx.client.get(url_of(member), "/health/ready")
            except DaemonError as err:
                if err.status == 503:  # e.g. still catching up; ask again
                    return None
                raise
            return {"draining": False, "ready": True}

        return ctx.wait_until(ready, READY_TIMEOUT_S, f"{member.name} to report ready")

    return run
