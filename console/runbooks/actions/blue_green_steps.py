"""The steps and gates of a blue-green switch (`blue_green.py` builds the plan from them).

Every step is safe to repeat after the worker died half-way through it: it looks at the
cluster and the node manager first and does only what is still missing (a node already
in the layout is reused, a member already added is not added again, a member already
removed answers 404 and that is fine, a node already retired is found where it was kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.clusters.daemon_client import DaemonError
from console.clusters.models import Cluster
from console.runbooks import conf, gates, live
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import Gate, GateResult, StepContext, StepFailed, StepRun
from console.runbooks.live import ClusterView
from daemon.contract import ContractError, parse_cluster_view

TRANSFER_ATTEMPTS = 3
MEMBERSHIP_TIMEOUT_S = 30.0


# ---- reading the cluster ----------------------------------------------------------------
def view_with_leader(ctx: StepContext) -> ClusterView:
    view = live.read_view(ctx.cluster, ctx.client)
    if view is None or not view.has_quorum or not view.leader:
        raise StepFailed("the cluster has no quorum and leader right now")
    return view


def view_from(ctx: StepContext, url: str) -> ClusterView | None:
    """The cluster as the node at `url` sees it, or None when it does not answer."""
    try:
        return parse_cluster_view(ctx.client.get(url, "/health/cluster"))
    except (DaemonError, ContractError):
        return None


def leader_url(view: ClusterView) -> str:
    return live.url_of(view.by_name[view.leader or ""])


def log_tail(nodes: Any, name: str) -> str:
    return "\n".join(nodes.status(name).log_tail[-lifecycle.LOG_LINES_SHOWN :])


# ---- where the console looks for the cluster ------------------------------------------
def set_seed(cluster: Cluster, url: str, listed: bool) -> None:
    """List (or unlist) a node's URL among the cluster's seed URLs. Once every old member
    has left, the console must still find the cluster: the seeds follow the members."""
    cluster.refresh_from_db(fields=["seed_urls"])
    seeds = [u for u in cluster.seed_urls or [] if u.rstrip("/") != url.rstrip("/")]
    if listed:
        seeds.append(url.rstrip("/"))
    if seeds != cluster.seed_urls:
        Cluster.objects.filter(id=cluster.id).update(seed_urls=seeds)
        cluster.seed_urls = seeds


# ---- adding the new members -----------------------------------------------------------
def add_member(name: str, release: str, deadline_s: float) -> StepRun:
    """Create `name` on `release` in the node manager, start it, make it a Raft member
    (asked of the leader) and wait until it has caught up, within `deadline_s`."""

    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        if name not in nodes.names():
            state = nodes.add_node(release)
            if state.name != name:  # the layout changed since the run was planned
                nodes.remove_node(state.name)
                raise StepFailed(
                    f"the node manager named the new node {state.name}, not {name}: the "
                    "cluster's layout changed since the run was requested; request it again"
                )
        state = nodes.status(name)
        view = view_with_leader(ctx)
        if state.release != release:
            if view.member(name) is not None:
                raise StepFailed(f"{name} is a member on {state.release or 'the checkout'}")
            # A worker killed inside add_node (the node listed, its release not yet set):
            # it never joined and holds nothing, so it is made again, on the release.
            nodes.remove_node(name)
            state = nodes.add_node(release)
            if state.name != name or state.release != release:
                raise StepFailed(f"could not make {name} again on release {release}")
        set_seed(ctx.cluster, state.url, listed=True)
        if view.member(name) is None:
            # Started first: the leader probes it before changing the membership.
            nodes.start(name, timeout_s=0)
            body = {"name": name, "raftAddress": state.raft_address, "httpUrl": state.url}
            try:
                ctx.client.post(leader_url(view), "/admin/members", json=body)
            except DaemonError as err:
                if not nodes.status(name).running:
                    raise StepFailed(
                        f"{name} exited at start on release {release}. Its last log lines:\n"
                        f"{log_tail(nodes, name)}"
                    ) from None
                raise StepFailed(f"the leader did not add {name}: {err}") from None
        return wait_caught_up(ctx, name, deadline_s)

    return run


def wait_caught_up(ctx: StepContext, name: str, deadline_s: float) -> dict[str, Any]:
    """Until the leader sees `name` reachable within the lag bounds; a node whose process
    died fails at once with its log lines, not after the deadline."""
    nodes = lifecycle.manager(ctx)
    max_ms, max_entries = conf.transfer_max_lag_ms(), conf.transfer_max_lag_entries()

    def caught_up() -> dict[str, Any] | None:
        if not nodes.status(name).running:
            raise StepFailed(
                f"{name} stopped running. Its last log lines:\n{log_tail(nodes, name)}"
            )
        view = live.read_view(ctx.cluster, ctx.client)
        member = view.member(name) if view else None
        if view is None or member is None or not member.reachable or not view.has_quorum:
            return None
        if view.leader == name or not gates.lag_reason(view, name, max_ms, max_entries):
            return {
                "member": name,
                "lagMs": member.lag_ms,
                "lagEntries": member.lag_entries,
                "clusterSize": view.cluster_size,
            }
        return None

    return ctx.wait_until(caught_up, deadline_s, f"{name} to join and catch up")


# ---- leadership -------------------------------------------------------------------------
def hand_leadership_to(targets: Iterable[str], why: str) -> StepRun:
    """Move leadership to one of `targets` (tried in order, each asked up to
    TRANSFER_ATTEMPTS times); a no-op when one of them leads already."""
    wanted = list(targets)

    def run(ctx: StepContext) -> dict[str, Any]:
        errors: list[str] = []
        asked = False
        for _attempt in range(TRANSFER_ATTEMPTS):
            for target in wanted:
                view = view_with_leader(ctx)
                if view.leader in wanted:
                    return {"leader": view.leader, "changed": asked, "why": why}
                member = view.member(target)
                if member is None or not member.reachable:
                    errors.append(f"{target} is not a reachable member")
                    continue
                asked = True
                try:
                    ctx.client.request(
                        "POST", leader_url(view), "/admin/transfer-leader",
                        json={"target": target}, timeout=15.0,
                    )  # fmt: skip
                except DaemonError as err:
                    errors.append(f"{target}: {err}")
                    continue
                try:
                    return ctx.wait_until(
                        _leads(ctx, wanted, why), lifecycle.LEADERSHIP_TIMEOUT_S,
                        f"{target} to lead",
                    )  # fmt: skip
                except StepFailed as err:
                    errors.append(str(err))
        raise StepFailed(f"leadership did not move to {', '.join(wanted)}: {'; '.join(errors)}")

    return run


def _leads(ctx: StepContext, wanted: list[str], why: str) -> Any:
    def check() -> dict[str, Any] | None:
        seen = live.read_view(ctx.cluster, ctx.client)
        if seen and seen.has_quorum and seen.leader in wanted:
            return {"leader": seen.leader, "changed": True, "why": why}
        return None

    return check


# ---- removing members -------------------------------------------------------------------
def remove_member(name: str) -> StepRun:
    """Ask the leader to take `name` out of the membership, and wait until the change is
    committed (the cluster no longer counts it). `name` must not lead (the plan moved
    leadership away first; the daemon refuses to remove its leader)."""

    def run(ctx: StepContext) -> dict[str, Any]:
        view = view_with_leader(ctx)
        if view.leader == name:
            raise StepFailed(f"{name} leads: leadership must move away before it leaves")
        if view.member(name) is not None:
            try:
                ctx.client.request(
                    "DELETE", leader_url(view), f"/admin/members/{name}", timeout=15.0
                )
            except DaemonError as err:
                if err.status != 404:  # 404: an interrupted attempt removed it already
                    raise StepFailed(f"the leader did not remove {name}: {err}") from None

        def gone() -> dict[str, Any] | None:
            # Asked of the leader, not of any node: the removed one still runs until the
            # next step stops it, and its own view may still count itself a member.
            seen = view_from(ctx, leader_url(view)) or live.read_view(ctx.cluster, ctx.client)
            if seen and seen.has_quorum and seen.member(name) is None:
                members = sorted(m.name for m in seen.members)
                return {"removed": name, "members": members, "leader": seen.leader}
            return None

        return ctx.wait_until(gone, MEMBERSHIP_TIMEOUT_S, f"{name} to leave the membership")

    return run


def retire(name: str, keep_h: float) -> StepRun:
    """Stop an old member that has left the membership; its data is moved aside, not
    deleted, and the step's detail says where."""

    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        url = nodes.status(name).url if name in nodes.names() else ""
        kept = nodes.retire_node(name)  # type: ignore[attr-defined]
        if url:
            set_seed(ctx.cluster, url, listed=False)
        return {"stopped": name, "dataKeptAt": str(kept), "keepForHours": keep_h}

    return run


def drain_if_serving(name: str) -> StepRun:
    """Drain `name` when it is a running member; a node that never started or never
    joined (a release that crashes at start) has nothing to drain."""
    drain = lifecycle.drain(name)

    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        view = view_with_leader(ctx)
        if name not in nodes.names() or not nodes.status(name).running:
            return {"drained": False, "why": f"{name} is not running"}
        if view.member(name) is None:
            return {"drained": False, "why": f"{name} is not a member"}
        return drain(ctx)

    return run


def stop_node(name: str) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        if name not in nodes.names():
            return {"stopped": name, "present": False}
        before = nodes.status(name)
        nodes.stop(name)
        set_seed(ctx.cluster, before.url, listed=False)
        return {"stopped": name, "pid": before.pid, "wasRunning": before.running}

    return run


def forget_node(name: str) -> StepRun:
    """A new member that never became part of the switch: its process and its data go."""

    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        if name in nodes.names():
            nodes.remove_node(name)
            return {"forgotten": name}
        return {"forgotten": name, "present": False}

    return run


def old_members_serve(old: list[str]) -> StepRun:
    """After a rollback: every old member undrained, ready, and the membership is theirs."""

    def run(ctx: StepContext) -> dict[str, Any]:
        for name in old:
            lifecycle.undrain(name)(ctx)
        view = view_with_leader(ctx)
        members = sorted(m.name for m in view.members)
        if members != sorted(old) or view.leader not in old:
            raise StepFailed(f"the membership is {members} led by {view.leader}, not {old}")
        return {"members": members, "leader": view.leader}

    return run


# ---- gates ------------------------------------------------------------------------------
def leader_among(names: list[str], what: str) -> Gate:
    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        if view.leader in names:
            return GateResult(True, view.leader)
        return GateResult(False, view.leader, f"the leader is {view.leader}, not one of {what}")

    return Gate(f"the leader is one of {what}", check)


def success_ratio(threshold: float, min_executions: int) -> Gate:
    """The cluster's execution success ratio over the gate's window, as a float: the
    runbook's `[ "$SUCCESS_RATE" -gt "98" ]` broke on a decimal rate. The window starts
    at the gate's first check (lifetime counters from /metrics, replicated on every
    node); with fewer than `min_executions` in it, a ratio says too little to fail on."""
    first: dict[str, Any] = {}

    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        counts = _counters(view, ctx)
        if counts is None:
            return GateResult(False, None, "no node answered /metrics")
        first.setdefault("counts", counts)
        total = max(0, counts[0] - first["counts"][0])
        ok = max(0, counts[1] - first["counts"][1])
        ratio = ok / total if total else None
        value = {"executions": total, "succeeded": ok, "ratio": ratio, "threshold": threshold}
        if ratio is None or total < min_executions or ratio >= threshold:
            return GateResult(True, value)
        return GateResult(
            False, value, f"success ratio {ratio:.4f} over {total} executions < {threshold}"
        )

    return Gate(f"execution success ratio ≥ {threshold}", check)


def _counters(view: ClusterView, ctx: StepContext) -> tuple[int, int] | None:
    """(totalOperations, successCount) as the leader (else any member) reports them."""
    ordered = sorted(view.members, key=lambda m: (m.name != view.leader, not m.reachable))
    for member in ordered:
        if not member.reachable or not live.url_of(member):
            continue
        try:
            body = ctx.client.get(live.url_of(member), "/metrics")
            return int(body["totalOperations"]), int(body["successCount"])
        except (DaemonError, KeyError, TypeError, ValueError):
            continue
    return None
