"""Snapshot: compact the Raft log of one node, or of every node one after another
(the runbook's answer to a filling disk). Membership does not change, so quorum is not
needed, but every node to snapshot must answer. No alert gate: a critical disk alert is
exactly when this is run."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from console.clusters.daemon_client import DaemonClient
from console.runbooks.actions.base import (
    Action,
    Params,
    Step,
    StepContext,
    StepFailed,
    StepRun,
    reachable_reasons,
)
from console.runbooks.live import ClusterView, Member, url_of

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


class SnapshotParams(Params):
    node: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=63, pattern=r"^[^\x00]+$"
        ),
        Field(description="the name of a node, or 'all' for every node one after another"),
    ] = ALL


class Snapshot(Action):
    name = "snapshot"
    label = "Snapshot"
    Params = SnapshotParams

    def check(self, view: ClusterView, params: SnapshotParams, client: DaemonClient) -> list[str]:
        if params.node != ALL and view.member(params.node) is None:
            names = ", ".join(sorted(m.name for m in view.members)) or "none"
            return [f"node {params.node} is not a member of this cluster (members: {names})"]
        reasons: list[str] = []
        for member in _targets(view, params):
            reasons += reachable_reasons(view, member, client)[1]
        return reasons

    def plan(self, view: ClusterView, params: SnapshotParams) -> list[Step]:
        return [Step(f"snapshot {m.name}", _snapshot(m)) for m in _targets(view, params)]


def _targets(view: ClusterView, params: SnapshotParams) -> list[Member]:
    if params.node == ALL:
        return sorted(view.members, key=lambda m: m.name)
    member = view.member(params.node)
    return [member] if member else []


def _snapshot(member: Member) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        answer = ctx.client.request(
            "POST", url_of(member), "/admin/snapshot", timeout=SNAPSHOT_TIMEOUT_S
        )
        if answer.get("status") != "compacted":
            raise StepFailed(f"{member.name} did not confirm the compaction: {answer}")
        return {key: answer.get(key) for key in REPORTED}

    return run
