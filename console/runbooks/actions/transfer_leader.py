"""Transfer leadership to a named node, then see the cluster agree on it.

Refused when the target is unreachable, draining or lagging: Raft only hands over to a
caught-up follower, and a leader that takes no work is a poor leader. Quorum and the
target's lag are checked again (gates) just before the transfer is asked for."""

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
    StepRun,
    checked_member,
    quorum_reasons,
)
from console.runbooks.live import ClusterView, Member, url_of

# The daemon waits up to 3 election timeouts for the new leader before it answers.
TRANSFER_TIMEOUT_S = 15.0
CONFIRM_TIMEOUT_S = 15.0


class TargetParams(Params):
    target: NodeName


class TransferLeader(Action):
    name = "transfer_leader"
    label = "Transfer leadership"
    Params = TargetParams

    def check(self, view: ClusterView, params: TargetParams, client: DaemonClient) -> list[str]:
        member, own, reasons = checked_member(view, params.target, client)
        reasons += quorum_reasons(view)
        if member is None or own is None:
            return reasons
        if view.leader == member.name:
            reasons.append(f"node {member.name} is already the leader")
            return reasons
        if own.draining:
            reasons.append(f"node {member.name} is draining; undrain it before it leads")
        if lag := gates.lag_reason(view, member.name, *_lag_limits()):
            reasons.append(lag)
        return reasons

    def plan(self, view: ClusterView, params: TargetParams) -> list[Step]:
        target = view.by_name[params.target]
        leader = view.member(view.leader or "")
        return [
            Step(
                f"transfer leadership to {target.name}",
                _transfer(target, leader),
                gates=(gates.has_quorum(), gates.caught_up(target.name, *_lag_limits())),
            ),
            Step(f"confirm {target.name} leads the cluster", _confirm(target)),
        ]


def _lag_limits() -> tuple[float, int]:
    return conf.transfer_max_lag_ms(), conf.transfer_max_lag_entries()


def _transfer(target: Member, leader: Member | None) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        # Ask the leader itself; any node would forward, but that is one more hop to fail.
        url = url_of(leader) if leader else url_of(target)
        answer = ctx.client.request(
            "POST",
            url,
            "/admin/transfer-leader",
            json={"target": target.name},
            timeout=TRANSFER_TIMEOUT_S,
        )
        return {"leader": answer.get("leader"), "previous": answer.get("previous")}

    return run


def _confirm(target: Member) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        def agreed() -> dict[str, Any] | None:
            try:
                seen = ctx.client.get(url_of(target), "/health/cluster")
            except DaemonError:
                return None  # a node busy electing may not answer; ask again
            if seen.get("leader") == target.name and seen.get("hasQuorum"):
                return {"leader": target.name, "term": seen.get("term")}
            return None

        return ctx.wait_until(agreed, CONFIRM_TIMEOUT_S, f"{target.name} to be the leader")

    return run
