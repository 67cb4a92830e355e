"""Steps the node lifecycle actions share (restart, stop, start, scale; upgrades next).

Every step is safe to repeat after an interruption: it looks at the node first and does
only what is still missing (draining a drained node, stopping a stopped one, handing
away a leadership the node no longer holds are no-ops). Processes go through the
cluster's node manager; membership and draining through the daemon's admin API.
"""

from __future__ import annotations

from typing import Any

from console.clusters.daemon_client import DaemonError
from console.clusters.models import Cluster, Release
from console.runbooks import conf, live
from console.runbooks.actions.base import StepContext, StepFailed, StepRun
from console.runbooks.nodes import NodeManager, NodeManagerError, manager_for

START_TIMEOUT_S = 60.0
REJOIN_TIMEOUT_S = 120.0
LEADERSHIP_TIMEOUT_S = 30.0
LOG_LINES_SHOWN = 20


def manager(ctx: StepContext) -> NodeManager:
    try:
        return manager_for(ctx.cluster)
    except NodeManagerError as exc:
        raise StepFailed(str(exc)) from None


def manager_reason(cluster: Cluster) -> str | None:
    try:
        manager_for(cluster).names()
    except NodeManagerError as exc:
        return str(exc)
    return None


def _view(ctx: StepContext) -> live.ClusterView | None:
    return live.read_view(ctx.cluster, ctx.client)


def _node_url(ctx: StepContext, name: str) -> str:
    return manager(ctx).status(name).url


def drain(name: str) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        url = _node_url(ctx, name)
        answer = ctx.client.post(url, "/admin/drain", json=None)
        if not answer.get("draining"):
            raise StepFailed(f"{name} did not start draining: {answer}")

        def idle() -> dict[str, Any] | None:
            queue = ctx.client.get(url, "/queue")
            if queue.get("active") == 0 and queue.get("queued") == 0:
                return {"draining": True, "active": 0, "queued": 0}
            return None

        return ctx.wait_until(idle, conf.drain_timeout_s(), f"{name}'s queue to empty")

    return run


def undrain(name: str) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        url = _node_url(ctx, name)
        ctx.client.post(url, "/admin/undrain", json=None)

        def ready() -> dict[str, Any] | None:
            try:
                if ctx.client.get(url, "/health/node").get("draining"):
                    return None
                ctx.client.get(url, "/health/ready")
            except DaemonError:
                return None  # still catching up, or busy: ask again
            return {"draining": False, "ready": True}

        return ctx.wait_until(ready, REJOIN_TIMEOUT_S, f"{name} to report ready")

    return run


def hand_leadership_away(name: str) -> StepRun:
    """If `name` leads, ask it to hand leadership to a caught-up member and wait."""

    def run(ctx: StepContext) -> dict[str, Any]:
        view = _view(ctx)
        if view is None:
            raise StepFailed("no node of the cluster answered")
        if view.leader != name:
            return {"leader": view.leader, "changed": False}
        leader = view.member(name)
        url = live.url_of(leader) if leader else _node_url(ctx, name)
        ctx.client.request("POST", url, "/admin/transfer-leader", json={}, timeout=15.0)

        def moved() -> dict[str, Any] | None:
            seen = _view(ctx)
            if seen and seen.leader and seen.leader != name and seen.has_quorum:
                return {"leader": seen.leader, "previous": name, "changed": True}
            return None

        return ctx.wait_until(moved, LEADERSHIP_TIMEOUT_S, f"a leader other than {name}")

    return run


def stop(name: str) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = manager(ctx)
        before = nodes.status(name)
        nodes.stop(name)
        return {"stopped": name, "pid": before.pid, "wasRunning": before.running}

    return run


def stop_keeping_quorum(name: str, wait_s: float) -> StepRun:
    """Stop `name` only while the others keep a majority: never more nodes down than the
    cluster can lose. A node that is already unreachable (it crashed, or never came up
    on a bad release) is stopped at once. Otherwise wait up to `wait_s` for a lost peer to
    come back (its supervisor restarts it), then give up with the reason, leaving `name`
    running: a rollback that ends there hands the cluster to an operator, with quorum."""
    stopping = stop(name)

    def run(ctx: StepContext) -> dict[str, Any]:
        def safe() -> dict[str, Any] | None:
            view = _view(ctx)
            if view is None:
                return None
            member = view.member(name)
            others = sum(1 for m in view.members if m.name != name and m.reachable)
            if member is None or not member.reachable or others >= view.quorum_size:
                return {"reachableOthers": others}
            return None

        try:
            waited = ctx.wait_until(safe, wait_s, f"a majority reachable without {name}")
        except StepFailed:
            raise StepFailed(
                f"{name} was left running: without it fewer than a majority of nodes would be "
                f"reachable, and no lost node came back within {wait_s:.0f}s"
            ) from None
        return {**stopping(ctx), **waited}

    return run


def start(name: str, release: str | None = None) -> StepRun:
    """Start `name` (on `release` when given). If it does not come up, it is put back on
    the release it ran before, and the step fails with its own last log lines."""

    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = manager(ctx)
        previous = nodes.status(name).release
        try:
            if release is not None and release != previous:
                result = nodes.run_on(name, release, START_TIMEOUT_S)
            else:
                result = nodes.start(name, START_TIMEOUT_S)
        except NodeManagerError as exc:
            raise StepFailed(str(exc)) from None
        if result.ready:
            return {"started": name, "pid": result.pid, "release": release or previous}
        detail = "\n".join(result.log_tail[-LOG_LINES_SHOWN:])
        back = ""
        if release is not None and release != previous:
            again = nodes.run_on(name, previous or None, START_TIMEOUT_S)
            back = (
                f"; put back on {previous or 'the checkout'}"
                f" ({'running, still drained' if again.ready else 'it did not start there either'})"
            )
        raise StepFailed(
            f"{name} did not become ready within {START_TIMEOUT_S:.0f}s{back}. "
            f"Its last log lines:\n{detail}"
        )

    return run


def wait_caught_up(name: str) -> StepRun:
    """Wait until the cluster sees `name` as a reachable member within the lag bounds."""

    def run(ctx: StepContext) -> dict[str, Any]:
        max_ms, max_entries = conf.transfer_max_lag_ms(), conf.transfer_max_lag_entries()

        def caught_up() -> dict[str, Any] | None:
            view = _view(ctx)
            member = view.member(name) if view else None
            if view is None or member is None or not member.reachable or not view.has_quorum:
                return None
            if view.leader == name:
                return {"leader": name, "lagEntries": 0}
            if member.lag_entries is None or member.lag_ms is None:
                return None
            if member.lag_entries <= max_entries and member.lag_ms <= max_ms:
                return {"lagMs": member.lag_ms, "lagEntries": member.lag_entries}
            return None

        return ctx.wait_until(caught_up, REJOIN_TIMEOUT_S, f"{name} to rejoin and catch up")

    return run


def release_reasons(name: str, enabled_code_version: int | None) -> list[str]:
    """Why nodes may not run release `name`, or [] when they may."""
    release = Release.objects.filter(name=name).first()
    if release is None:
        known = ", ".join(Release.objects.values_list("name", flat=True)[:10]) or "none"
        return [f"unknown release {name[:63]!r} (releases: {known})"]
    if release.status == Release.Status.YANKED:
        return [f"release {name} is yanked: it must not run"]
    if not release.can_roll_out:
        return [f"release {name} is {release.status}, not verified; verify it first"]
    enabled = enabled_code_version or 0
    if release.max_code_version is None or release.max_code_version < enabled:
        return [
            f"release {name} supports state-machine code version up to "
            f"{release.max_code_version}, but the cluster has enabled {enabled}; "
            "running it would corrupt the replicated state"
        ]
    return []
