"""Transfer leadership to a named node, then see the cluster agree on it.

Refused when the target is unreachable, draining or lagging: Raft only hands over to a
caught-up follower, and a leader that takes no work is a poor leader."""

from __future__ import annotations

from typing import Any

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.runbooks import conf
from console.runbooks.actions.base import (
    Step,
    StepContext,
    checked_member,
    node_name,
    quorum_reasons,
)
from console.runbooks.live import ClusterView, Member

LABEL = "Transfer leadership"
# The daemon waits up to 3 election timeouts for the new leader before it answers.
TRANSFER_TIMEOUT_S = 15.0
CONFIRM_TIMEOUT_S = 15.0


def clean(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return node_name(params, "target")


def check(view: ClusterView, params: dict[str, Any], client: DaemonClient) -> list[str]:
    member, own, reasons = checked_member(view, params, "target", client)
    reasons += quorum_reasons(view)
    if member is None or own is None:
        return reasons
    if view.leader == member.name:
        reasons.append(f"node {member.name} is already the leader")
        return reasons
    if own.get("draining"):
        reasons.append(f"node {member.name} is draining; undrain it before it leads")
    max_ms, max_entries = conf.transfer_max_lag_ms(), conf.transfer_max_lag_entries()
    if member.lag_ms is None or member.lag_entries is None:
        reasons.append(f"node {member.name}'s replication lag is unknown to the leader")
    elif member.lag_ms > max_ms or member.lag_entries > max_entries:
        reasons.append(
            f"node {member.name} lags {member.lag_ms:.0f} ms / {member.lag_entries} entries "
            f"behind the leader (limit {max_ms} ms / {max_entries} entries)"
        )
    return reasons


def plan(view: ClusterView, params: dict[str, Any]) -> list[Step]:
    target = view.members[params["target"]]
    leader = view.members.get(view.leader or "")
    return [
        Step(f"transfer leadership to {target.name}", _transfer(target, leader)),
        Step(f"confirm {target.name} leads the cluster", _confirm(target)),
    ]


def _transfer(target: Member, leader: Member | None):
    def run(ctx: StepContext) -> dict[str, Any]:
        # Ask the leader itself; any node would forward, but that is one more hop to fail.
        url = leader.http_url if leader else target.http_url
        answer = ctx.client.request(
            "POST",
            url,
            "/admin/transfer-leader",
            json={"target": target.name},
            timeout=TRANSFER_TIMEOUT_S,
        )
        return {"leader": answer.get("leader"), "previous": answer.get("previous")}

    return run


def _confirm(target: Member):
    def run(ctx: StepContext) -> dict[str, Any]:
        def agreed() -> dict[str, Any] | None:
            try:
                seen = ctx.client.get(target.http_url, "/health/cluster")
            except DaemonError:
                return None  # a node busy electing may not answer; ask again
            if seen.get("leader") == target.name and seen.get("hasQuorum"):
                return {"leader": target.name, "term": seen.get("term")}
            return None

        return ctx.wait_until(agreed, CONFIRM_TIMEOUT_S, f"{target.name} to be the leader")

    return run
