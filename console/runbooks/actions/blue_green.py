"""Blue-green switch of a Raft cluster to a verified release: new members, then old out.

The runbook's procedure (new pods alongside the old, wait, check, switch) made real for
Raft, where "alongside" means "in the same membership":

1. precheck: quorum with every node reachable and caught up, the release verified and
   runnable on the enabled code version, no other run, no critical alert, a node manager
   that can retire a member and keep its data;
2. add the new members one at a time on the release (each a committed membership change,
   caught up before the next), each soaked with gates (it reports the release, quorum,
   caught up, the execution success ratio);
3. hand leadership to a new member; hold the success gate over a window with it leading
   (a ratio compared as a float, not the runbook's `-gt 98` on a decimal rate);
4. remove the old members one at a time (drain, a committed membership change, stop), so
   quorum is never at stake; each one's directory (Raft data, config, log) is moved
   aside, never deleted, and the step's detail says where (kept for `keepOldDataH`);
5. a last success gate on the new members alone.

Rollback (a failed step or gate, or an abort) before any old member left: leadership
back to an old member, the new members removed newest first and their processes
stopped and forgotten, the old members undrained and serving. Once an old member has
left the membership, going back is not a one-button job (its data is behind): the run
ends `needs_operator`, naming what runs where and where the old data is.

The whole run must progress within `progressDeadlineS` (the runner's progress deadline),
or it rolls back like a failed gate. The old and new member names are fixed into the stored params when the run is
requested (`settle`), so a resumed run rebuilds the same plan.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from pydantic import Field

from console.clusters.daemon_client import DaemonClient
from console.runbooks import gates
from console.runbooks.actions import blue_green_steps as steps
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import Action, Params, Step, StepContext, StepFailed, StepRun
from console.runbooks.actions.soak import reports_release
from console.runbooks.actions.upgrade import cluster_reasons, lag_bounds, releases_of
from console.runbooks.live import ClusterView
from console.runbooks.nodes import NodeManagerError, manager_for

MAX_MEMBERS_DURING = 10  # old and new together, at the widest point of the switch
ADD = "add "
REMOVE = "remove "
ROLLBACK_STOP = "rollback: stop "  # the prefix a resumed rollback rebuilds its steps from


class BlueGreenParams(Params):
    release: str = Field(min_length=1, max_length=63, description="the verified release to run")
    soakS: float = Field(5.0, ge=0, le=600, description="how long each new member's gates hold")
    successWindowS: float = Field(
        10.0, ge=0, le=1800, description="the success gate's window, a new member leading"
    )
    successRatio: float = Field(
        0.98, ge=0, le=1, description="lowest execution success ratio (0-1) over a window"
    )
    minExecutions: int = Field(
        20, ge=1, le=100000, description="fewer executions in a window say too little to fail on"
    )
    nodeDeadlineS: float = Field(
        120.0, ge=5, le=1800, description="how long one new member may take to catch up"
    )
    progressDeadlineS: float = Field(
        900.0,
        ge=10,
        le=86400,
        description="the whole switch must finish within this (the runner rolls back past it)",
    )
    keepOldDataH: float = Field(
        24.0, ge=0, le=24 * 90, description="how long the old members' data is to be kept"
    )
    # Filled in when the run is requested; not for the operator to set.
    old: list[str] | None = Field(None, description="set by the console: the old members")
    new: list[str] | None = Field(None, description="set by the console: the new members")


def _index(name: str) -> int | None:
    found = re.fullmatch(r".*-(\d+)", name)
    return int(found.group(1)) if found else None


def new_names(old: list[str], taken: set[str]) -> list[str]:
    """The names the node manager gives the next len(old) nodes: the lowest free index
    each time, after the old members' prefix (the local layout's rule)."""
    prefix = old[0].rsplit("-", 1)[0] + "-" if old else "node-"
    used = {i for name in taken if (i := _index(name)) is not None}
    names = []
    index = 0
    while len(names) < len(old):
        if index not in used:
            names.append(f"{prefix}{index}")
            used.add(index)
        index += 1
    return names


class BlueGreen(Action):
    name = "blue_green"
    label = "Blue-green switch"
    Params = BlueGreenParams

    def check(self, view: ClusterView, params: BlueGreenParams, client: DaemonClient) -> list[str]:
        reasons, enabled = cluster_reasons(view, client)
        reasons += lifecycle.release_reasons(params.release, enabled)
        if 2 * view.cluster_size > MAX_MEMBERS_DURING:
            reasons.append(
                f"a blue-green switch doubles the membership for a while: {view.cluster_size} "
                f"members would become {2 * view.cluster_size}, more than {MAX_MEMBERS_DURING}"
            )
        cluster = getattr(client, "cluster", None)
        if cluster is None or lifecycle.manager_reason(cluster):
            return reasons
        nodes = manager_for(cluster)
        if not hasattr(nodes, "retire_node"):
            reasons.append(
                f"the {cluster.node_manager} node manager cannot remove an old member while "
                "keeping its data (a StatefulSet removes only its highest pod); use the "
                "rolling upgrade on this cluster"
            )
        current = releases_of(cluster, [m.name for m in view.members])
        if current and all(r == params.release for r in current.values()):
            reasons.append(f"every node already runs release {params.release}")
        return reasons

    def settle(self, view: ClusterView, params: BlueGreenParams, client: DaemonClient) -> Params:
        if params.old is not None and params.new is not None:
            return params
        old = sorted(m.name for m in view.members)
        taken = set(old)
        cluster = getattr(client, "cluster", None)
        if cluster is not None:
            with contextlib.suppress(NodeManagerError):
                taken |= set(manager_for(cluster).names())
        return params.model_copy(update={"old": old, "new": new_names(old, taken)})

    def plan(self, view: ClusterView, params: BlueGreenParams) -> list[Step]:
        old = params.old or sorted(m.name for m in view.members)
        new = params.new or new_names(old, set(old))
        release = params.release
        ratio = steps.success_ratio(params.successRatio, params.minExecutions)
        plan: list[Step] = []
        for name in new:
            soak = (
                reports_release(name, release),
                gates.has_quorum(),
                gates.caught_up(name, *lag_bounds()),
                steps.success_ratio(params.successRatio, params.minExecutions),
            )
            plan += [
                Step(
                    f"{ADD}{name} on release {release}",
                    steps.add_member(name, release, params.nodeDeadlineS),
                    gates=(gates.has_quorum(),),
                ),
                Step(
                    f"soak {name} on release {release}",
                    _done({"soaked": name}),
                    gates=tuple(gates.held(g, params.soakS) for g in soak),
                ),
            ]
        plan += [
            Step("hand leadership to a new member", steps.hand_leadership_to(new, "switch")),
            Step(
                "success gate with a new member leading",
                _done({"checked": "success ratio"}),
                gates=tuple(
                    gates.held(g, params.successWindowS)
                    for g in (gates.has_quorum(), steps.leader_among(new, "the new members"), ratio)
                ),
            ),
        ]
        for name in old:
            plan += [
                Step(
                    f"drain {name}",
                    lifecycle.drain(name),
                    gates=(gates.has_quorum(), steps.leader_among(new, "the new members")),
                ),
                Step(
                    f"{REMOVE}{name} from the membership",
                    steps.remove_member(name),
                    gates=(gates.has_quorum(), gates.quorum_survives_stopping(name)),
                ),
                Step(f"stop {name} and keep its data", steps.retire(name, params.keepOldDataH)),
            ]
        last = steps.success_ratio(params.successRatio, params.minExecutions)
        plan.append(
            Step(
                f"check the new members serve on release {release}",
                _serving(new, release),
                gates=tuple(
                    gates.held(g, min(params.successWindowS, params.soakS))
                    for g in (gates.has_quorum(), last)
                ),
            )
        )
        return plan

    def touched(self, step_names: list[str]) -> list[str]:
        """New members whose add started (in order), then old members whose removal did."""
        added = [
            n.removeprefix(ADD).split(" on release ")[0] for n in step_names if n.startswith(ADD)
        ]
        removed = [
            n.removeprefix(REMOVE).removesuffix(" from the membership")
            for n in step_names
            if n.startswith(REMOVE)
        ]
        return added + removed

    def rollback(self, params: BlueGreenParams, touched: list[str]) -> list[Step]:
        old = params.old or []
        if not touched:
            return []
        gone = [n for n in touched if n in old]
        if gone:
            return [Step("rollback: check whether the old members can take over", _too_late(gone))]
        plan = [
            Step(
                "rollback: put leadership back on an old member",
                steps.hand_leadership_to(old, "rollback"),
            )
        ]
        for name in reversed(touched):
            plan += [
                # Drained first, as the old members are on the way forward: a member
                # removed with executions in flight fails them.
                Step(f"rollback: drain {name}", steps.drain_if_serving(name)),
                Step(f"rollback: remove {name} from the membership", steps.remove_member(name)),
                Step(f"{ROLLBACK_STOP}{name}", steps.stop_node(name)),
                Step(f"rollback: forget {name}", steps.forget_node(name)),
            ]
        plan.append(
            Step(
                "rollback: undrain the old members and check they serve",
                steps.old_members_serve(old),
            )
        )
        return plan


def _done(detail: dict[str, Any]) -> StepRun:
    """A step whose work is its gates (a soak): it records that they held."""

    def run(ctx: StepContext) -> dict[str, Any]:
        return detail

    return run


def _too_late(gone: list[str]) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        raise StepFailed(
            f"{', '.join(gone)} already left the membership (their data is kept under the "
            "local cluster's retired/ directory, see the steps' details); the new members "
            "hold the cluster, so it is not switched back automatically"
        )

    return run


def _serving(new: list[str], release: str) -> StepRun:
    """The switch is done: the membership is exactly the new members, each on `release`."""

    def run(ctx: StepContext) -> dict[str, Any]:
        view = steps.view_with_leader(ctx)
        members = sorted(m.name for m in view.members)
        if members != sorted(new):
            raise StepFailed(f"the membership is {members}, not the new members {sorted(new)}")
        runs = {m.name: (m.build.release if m.build else None) for m in view.members}
        wrong = {n: r for n, r in runs.items() if r != release}
        if wrong:
            raise StepFailed(f"members not on release {release}: {wrong}")
        return {"members": members, "leader": view.leader, "releases": runs}

    return run
