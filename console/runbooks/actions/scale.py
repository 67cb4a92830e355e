"""Scale a cluster to N members, one member at a time.

Up: a new node is added to the node manager's set and started, made a Raft member
(`POST /admin/members`, asked of the leader), and must catch up before the next one.
Down: the highest-numbered members go first; a leader among them hands leadership
away first; each is removed from the membership (`DELETE /admin/members/<name>`) and
only then stopped, so the cluster never counts a member that is not running.

Refused below 3 members (one failure would lose quorum) or above MAX_MEMBERS, and when
the members that would stay do not hold a quorum of the new size among the reachable.
The plan is two reconciling steps (add until N, remove until N) whose names depend only
on N: a resumed run repeats the unfinished one, which does only what is still missing.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.runbooks import live
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import (
    Action,
    Params,
    Step,
    StepContext,
    StepFailed,
    StepRun,
    quorum_reasons,
)
from console.runbooks.live import ClusterView

MIN_MEMBERS = 3
MAX_MEMBERS = 7


class ScaleParams(Params):
    to: int = Field(..., description="the number of members the cluster should have")


def _index(name: str) -> tuple[int, str]:
    found = re.search(r"(\d+)$", name)
    return (int(found.group(1)) if found else -1, name)


def leaving(view: ClusterView, to: int) -> list[str]:
    """The members a scale-down to `to` removes: the highest-numbered first."""
    names = sorted((m.name for m in view.members), key=_index)
    return list(reversed(names[to:]))


class Scale(Action):
    name = "scale"
    label = "Scale"
    Params = ScaleParams

    def check(self, view: ClusterView, params: ScaleParams, client: DaemonClient) -> list[str]:
        reasons = quorum_reasons(view)
        if params.to < MIN_MEMBERS:
            reasons.append(
                f"a cluster of {params.to} cannot lose a member without losing quorum; "
                f"scale to at least {MIN_MEMBERS}"
            )
        if params.to > MAX_MEMBERS:
            reasons.append(f"at most {MAX_MEMBERS} members (each one slows every commit)")
        if params.to == view.cluster_size:
            reasons.append(f"the cluster already has {params.to} members")
        cluster = getattr(client, "cluster", None)
        if cluster is not None and (why := lifecycle.manager_reason(cluster)):
            reasons.append(why)
        if reasons or params.to > view.cluster_size:
            return reasons
        going = set(leaving(view, params.to))
        staying = [m for m in view.members if m.name not in going]
        reachable = sum(1 for m in staying if m.reachable)
        needed = params.to // 2 + 1
        if reachable < needed:
            reasons.append(
                f"removing {', '.join(sorted(going))} would leave {reachable} reachable of "
                f"{params.to}; the cluster needs {needed} for quorum"
            )
        return reasons

    def plan(self, view: ClusterView, params: ScaleParams) -> list[Step]:
        to = params.to
        return [
            Step(f"add members one at a time until there are {to}", _grow(to)),
            Step(f"remove members one at a time until there are {to}", _shrink(to)),
        ]


def _view(ctx: StepContext) -> ClusterView:
    view = live.read_view(ctx.cluster, ctx.client)
    if view is None or not view.has_quorum or not view.leader:
        raise StepFailed("the cluster has no quorum and leader right now")
    return view


def _leader_url(view: ClusterView) -> str:
    return live.url_of(view.by_name[view.leader or ""])


def _grow(to: int) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        added: list[str] = []
        while True:
            view = _view(ctx)
            if view.cluster_size >= to:
                return {"added": added, "members": view.cluster_size}
            members = {m.name for m in view.members}
            # A node a killed worker already started but never made a member is reused.
            spare = [n for n in nodes.names() if n not in members]
            state = nodes.status(spare[0]) if spare else nodes.add_node()
            # It cannot say "started" before it is a member (it has no quorum to join):
            # start it, make it a member, then wait for it to catch up.
            nodes.start(state.name, timeout_s=0)
            if not nodes.status(state.name).running:
                tail = "\n".join(nodes.status(state.name).log_tail[-lifecycle.LOG_LINES_SHOWN :])
                raise StepFailed(f"{state.name} exited at start. Its last log lines:\n{tail}")
            body = {"name": state.name, "raftAddress": state.raft_address, "httpUrl": state.url}
            ctx.client.post(_leader_url(view), "/admin/members", json=body)
            lifecycle.wait_caught_up(state.name)(ctx)
            added.append(state.name)

    return run


def _shrink(to: int) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        removed: list[str] = []
        while True:
            view = _view(ctx)
            going = leaving(view, to)
            if not going:
                _stop_leftovers(nodes, {m.name for m in view.members}, removed)
                return {"removed": removed, "members": view.cluster_size}
            name = going[0]
            lifecycle.hand_leadership_away(name)(ctx)
            view = _view(ctx)
            try:
                ctx.client.request(
                    "DELETE", _leader_url(view), f"/admin/members/{name}", timeout=15.0
                )
            except DaemonError as err:
                if err.status != 404:  # 404: already removed by an interrupted attempt
                    raise
            nodes.remove_node(name)
            removed.append(name)

    return run


def _stop_leftovers(nodes: Any, members: set[str], removed: list[str]) -> None:
    """Nodes removed from the membership whose process a killed worker left running."""
    for name in nodes.names():
        if name not in members:
            nodes.remove_node(name)
            removed.append(name)
