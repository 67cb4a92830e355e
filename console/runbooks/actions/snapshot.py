"""Snapshot: compact the Raft log of one node, or of every node one after another
(the runbook's answer to a filling disk). Membership does not change, so quorum is not
needed, but every node to snapshot must answer."""

from __future__ import annotations

from typing import Any

from console.clusters.daemon_client import DaemonClient
from console.runbooks.actions.base import Step, StepContext, StepFailed, reachable_reasons
from console.runbooks.live import ClusterView, Member

LABEL = "Snapshot"
ALL = "all"
# Compaction waits up to 30 s on the daemon; give the request a little more.
SNAPSHOT_TIMEOUT_S = 40.0
REPORTED = (
    "status",
    "journalBytesBefore",
    "journalBytesAfter",
    "dataDirBytesBefore",
    "dataDirBytesAfter",
)


def clean(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(params, dict):
        return {}, ["params must be an object"]
    unknown = sorted(set(params) - {"node"})
    if unknown:
        return {}, [f"unknown parameter {unknown[0]!r}; snapshot takes only 'node'"]
    node = params.get("node", ALL)
    if not isinstance(node, str) or not node.strip() or len(node) > 63 or "\x00" in node:
        return {}, ["node must be a node name, or 'all'"]
    return {"node": node.strip()}, []


def targets(view: ClusterView, params: dict[str, Any]) -> list[Member]:
    if params["node"] == ALL:
        return [view.members[name] for name in sorted(view.members)]
    member = view.members.get(params["node"])
    return [member] if member else []


def check(view: ClusterView, params: dict[str, Any], client: DaemonClient) -> list[str]:
    if params["node"] != ALL and params["node"] not in view.members:
        names = ", ".join(sorted(view.members)) or "none"
        return [f"node {params['node']} is not a member of this cluster (members: {names})"]
    reasons: list[str] = []
    for member in targets(view, params):
        reasons += reachable_reasons(view, member, client)[1]
    return reasons


def plan(view: ClusterView, params: dict[str, Any]) -> list[Step]:
    return [Step(f"snapshot {m.name}", _snapshot(m)) for m in targets(view, params)]


def _snapshot(member: Member):
    def run(ctx: StepContext) -> dict[str, Any]:
        answer = ctx.client.request(
            "POST", member.http_url, "/admin/snapshot", timeout=SNAPSHOT_TIMEOUT_S
        )
        if answer.get("status") != "compacted":
            raise StepFailed(f"{member.name} did not confirm the compaction: {answer}")
        return {key: answer.get(key) for key in REPORTED}

    return run
