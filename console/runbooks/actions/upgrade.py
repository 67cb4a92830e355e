"""Rolling upgrade of a cluster to a verified release, one node at a time.

First a backup of the cluster (the backups app's procedure: a Backup row, its id in the
step's detail); if it fails, the run stops before any node is touched.

Order: followers first (by name), the leader last, after its leadership has been handed
to a node that already runs the new release. The order and each node's previous release
are fixed into the stored params when the run is requested (`settle`), so a resumed run
rebuilds the same plan even if the leader moved meanwhile.

Per node: drain → hand leadership away if it leads → stop (maxUnavailable 1: gated on
quorum surviving) → start on the new release → rejoined and caught up → soak (gates held
for `soakS`: the node reports the new build, quorum and a leader, its lag within bounds,
no unplanned leader change, error ratio and p95 no worse than the baseline) → undrain.

Last, when the release supports a state-machine code version above the one the cluster
enabled: "switch the code version to N", the point of no return for a binary rollback.
With `requirePromote` (the default) the run pauses before it, awaiting promotion; the
operator promotes it (or aborts it, which rolls back). The whole run must progress within
`progressDeadlineS` (see the runner), or it rolls back like a failed gate.

When a step fails, a gate fails, the deadline passes, or the operator aborts, the runner asks `rollback` for
the steps that put every touched node back on its previous release, newest first: each
is stopped and started directly on its old release (never waiting on a node that never
became healthy), then must rejoin and catch up under the same gates.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.runbooks import conf, gates, live
from console.runbooks.actions import lifecycle, upgrade_edges
from console.runbooks.actions.base import (
    Action,
    Params,
    Step,
    StepContext,
    StepFailed,
    StepRun,
    checked_member,
    quorum_reasons,
)
from console.runbooks.actions.soak import soak_gates
from console.runbooks.actions.soak_feed import FeedUnreadable, measure_baseline
from console.runbooks.live import ClusterView
from console.runbooks.nodes import NodeManagerError, manager_for


class UpgradeParams(Params):
    release: str = Field(min_length=1, max_length=63, description="the verified release to run")
    soakS: float = Field(10.0, ge=0, le=600, description="how long each node's gates must hold")
    nodeDeadlineS: float = Field(
        120.0, ge=5, le=1800, description="how long one node may take to become healthy"
    )
    maxErrorRatioIncrease: float = Field(
        0.01, ge=0, le=1, description="allowed rise of the error ratio over the baseline"
    )
    maxP95Increase: float = Field(
        0.5, ge=0, le=10, description="allowed relative rise of p95 latency over the baseline"
    )
    progressDeadlineS: float = Field(
        900.0,
        ge=10,
        le=86400,
        description="how long the whole run may take (paused time "
        "not counted) before it rolls back",
    )
    requirePromote: bool = Field(
        True, description="stop before the code-version switch until an operator promotes"
    )
    # Filled in when the run is requested; not for the operator to set.
    order: list[str] | None = Field(None, description="set by the console: the node order")
    previous: dict[str, str] | None = Field(
        None, description="set by the console: each node's release before the upgrade"
    )
    switchTo: int | None = Field(
        None, ge=0, description="set by the console: the code version to switch to last (0: none)"
    )


def node_order(view: ClusterView) -> list[str]:
    """Followers first, by name; the leader last."""
    followers = sorted(m.name for m in view.members if m.name != view.leader)
    return followers + ([view.leader] if view.leader else [])


class Upgrade(Action):
    name = "upgrade"
    label = "Rolling upgrade"
    Params = UpgradeParams

    def check(self, view: ClusterView, params: UpgradeParams, client: DaemonClient) -> list[str]:
        reasons, enabled = cluster_reasons(view, client)
        reasons += lifecycle.release_reasons(params.release, enabled)
        cluster = getattr(client, "cluster", None)
        if cluster is not None and not lifecycle.manager_reason(cluster):
            current = releases_of(cluster, [m.name for m in view.members])
            if current and all(r == params.release for r in current.values()):
                reasons.append(f"every node already runs release {params.release}")
        return reasons

    def settle(self, view: ClusterView, params: UpgradeParams, client: DaemonClient) -> Params:
        order = params.order or node_order(view)
        previous = params.previous
        cluster = getattr(client, "cluster", None)
        if previous is None and cluster is not None:
            previous = releases_of(cluster, order)
        switch = params.switchTo
        if switch is None:  # decided once: a resume must rebuild the same last step
            switch = upgrade_edges.switch_target(params.release, view)
        return params.model_copy(
            update={"order": order, "previous": previous or {}, "switchTo": switch}
        )

    def plan(self, view: ClusterView, params: UpgradeParams) -> list[Step]:
        order = params.order or node_order(view)
        for name in order:
            view.by_name[name]  # a KeyError when it left the cluster: preflight says so
        steps = [Step(upgrade_edges.BACKUP_STEP, _baseline_then(upgrade_edges.backup_first()))]
        for name in order:
            steps += node_steps(name, params.release, params)
        if params.switchTo:
            steps.append(upgrade_edges.switch_step(params.switchTo, params.requirePromote))
        return steps

    def rollback(self, params: UpgradeParams, touched: list[str]) -> list[Step]:
        """Steps putting `touched` nodes (newest first) back on their previous release."""
        previous = params.previous or {}
        steps: list[Step] = []
        for name in reversed(touched):
            old = previous.get(name, "")
            on = old or "the checkout"
            steps += [
                Step(
                    f"rollback: stop {name}",
                    _on(
                        name,
                        "rollback: stop",
                        lifecycle.stop_keeping_quorum(name, params.nodeDeadlineS),
                    ),
                ),
                Step(
                    f"rollback: start {name} on {on}",
                    _on(name, "rollback: start", _start_on(name, old, params)),
                ),
                Step(
                    f"rollback: wait until {name} has rejoined and caught up",
                    _on(name, "rollback: catch up", lifecycle.wait_caught_up(name)),
                ),
                Step(
                    f"rollback: undrain {name}",
                    _on(name, "rollback: undrain", lifecycle.undrain(name)),
                ),
            ]
        return steps

    def touched(self, step_names: list[str]) -> list[str]:
        """The nodes whose stop step was started, in upgrade order."""
        return [n.removeprefix("stop ") for n in step_names if n.startswith("stop ")]


def cluster_reasons(view: ClusterView, client: DaemonClient) -> tuple[list[str], int | None]:
    """The precheck shared by upgrade and rollback: quorum, every node reachable and
    caught up, the node manager usable, no critical alert. Also the enabled code version."""
    reasons = quorum_reasons(view)
    enabled = None
    for member in view.members:
        _m, own, why = checked_member(view, member.name, client)
        reasons += why
        if own is not None and own.code_version is not None:
            enabled = max(enabled or 0, own.code_version)
        lag = "" if why else gates.lag_reason(view, member.name, *lag_bounds())
        if member.name != view.leader and lag:
            reasons.append(lag)
    cluster = getattr(client, "cluster", None)
    if cluster is not None:
        if why := lifecycle.manager_reason(cluster):
            reasons.append(why)
        ctx = StepContext(client=client, heartbeat=lambda: None, cluster=cluster)
        if not (verdict := gates.no_critical_alert().check(view, ctx)).ok:
            reasons.append(verdict.reason)
    return reasons, enabled


def lag_bounds() -> tuple[float, int]:
    return conf.transfer_max_lag_ms(), conf.transfer_max_lag_entries()


def releases_of(cluster: Any, names: list[str]) -> dict[str, str]:
    try:
        nodes = manager_for(cluster)
        return {name: nodes.status(name).release for name in names}
    except (NodeManagerError, KeyError):
        return {}


def node_steps(name: str, release: str, params: UpgradeParams) -> list[Step]:
    """One node's upgrade (or quick rollback) to `release` ("" = the checkout)."""
    soak = soak_gates(name, release, params, *lag_bounds())
    return [
        Step(
            f"drain {name}", _on(name, "drain", lifecycle.drain(name)), gates=(gates.has_quorum(),)
        ),
        Step(
            f"hand leadership away from {name} if it leads",
            _on(name, "handover", _hand_to_upgraded(name, release)),
        ),
        Step(
            f"stop {name}",
            _on(name, "stop", lifecycle.stop(name)),
            gates=(gates.has_quorum(), gates.quorum_survives_stopping(name)),
        ),
        Step(
            f"start {name} on release {release or 'the checkout'}",
            _on(name, "start", _start_on(name, release, params)),
        ),
        Step(
            f"wait until {name} has rejoined and caught up",
            _on(name, "catch up", lifecycle.wait_caught_up(name)),
        ),
        Step(
            f"soak {name} on release {release or 'the checkout'}",
            _on(name, "soak", _soaked(name)),
            gates=soak,
        ),
        Step(f"undrain {name}", _on(name, "undrain", lifecycle.undrain(name))),
    ]


def _on(node: str, phase: str, run: StepRun) -> StepRun:
    """`run`, its detail tagged with the node and the phase (what a progress view shows
    per node without parsing step names)."""

    def tagged(ctx: StepContext) -> dict[str, Any]:
        return {"node": node, "phase": phase, **run(ctx)}

    return tagged


def _soaked(name: str) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        return {"soaked": name}

    return run


TRANSFER_ATTEMPTS = 3


def _hand_to_upgraded(name: str, release: str) -> StepRun:
    """`_transfer_once`, asked again when the daemon saw no new leader in time (under
    load an election can take longer than its wait): fails after TRANSFER_ATTEMPTS."""
    once = _transfer_once(name, release)

    def run(ctx: StepContext) -> dict[str, Any]:
        for attempt in range(1, TRANSFER_ATTEMPTS + 1):
            try:
                return once(ctx)
            except (DaemonError, StepFailed) as err:
                seen = live_view(ctx, required=False)
                if seen is not None and seen.leader and seen.leader != name and seen.has_quorum:
                    return {"leader": seen.leader, "previous": name, "changed": True}
                if attempt == TRANSFER_ATTEMPTS:
                    raise StepFailed(
                        f"{name} still leads after {attempt} attempts: {err}"
                    ) from None
        raise AssertionError("unreachable")

    return run


def _transfer_once(name: str, release: str) -> StepRun:
    """If `name` leads, hand leadership to a node already on the new release (the
    leader is upgraded last, so one exists unless the cluster has one node)."""
    away = lifecycle.hand_leadership_away(name)

    def run(ctx: StepContext) -> dict[str, Any]:
        view = live_view(ctx)
        if view.leader != name:
            return {"leader": view.leader, "changed": False}
        target = next(
            (
                m
                for m in view.members
                if m.name != name
                and m.reachable
                and m.build is not None
                and m.build.release == release
            ),
            None,
        )
        if target is None:
            return away(ctx)
        try:
            ctx.client.request(
                "POST",
                (view.member(name).http_url or "").rstrip("/"),  # type: ignore[union-attr]
                "/admin/transfer-leader",
                json={"target": target.name},
                timeout=15.0,
            )
        except DaemonError:
            # The upgraded node did not win in time (it may have been catching up): if
            # `name` still leads, let the daemon pick any caught-up member instead.
            seen = live_view(ctx, required=False)
            if seen is None or seen.leader in (None, name):
                return away(ctx)

        def moved() -> dict[str, Any] | None:
            seen = live_view(ctx, required=False)
            if seen and seen.leader and seen.leader != name and seen.has_quorum:
                return {"leader": seen.leader, "previous": name, "changed": True}
            return None

        return ctx.wait_until(moved, lifecycle.LEADERSHIP_TIMEOUT_S, f"a leader other than {name}")

    return run


def live_view(ctx: StepContext, required: bool = True) -> ClusterView:
    view = live.read_view(ctx.cluster, ctx.client)
    if view is None and required:
        raise StepFailed("no node of the cluster answered")
    return view  # type: ignore[return-value]


def _start_on(name: str, release: str, params: UpgradeParams) -> StepRun:
    """Start `name` directly on `release`; unlike restart_node, a node that does not come
    up is NOT put back here: the run's rollback does that, for every touched node."""

    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        try:
            result = nodes.run_on(name, release or None, params.nodeDeadlineS)
        except NodeManagerError as exc:
            raise StepFailed(str(exc)) from None
        if result.ready:
            return {"started": name, "pid": result.pid, "release": release}
        tail = "\n".join(result.log_tail[-lifecycle.LOG_LINES_SHOWN :])
        raise StepFailed(
            f"{name} did not become ready on {release or 'the checkout'} within "
            f"{params.nodeDeadlineS:.0f}s. Its last log lines:\n{tail}"
        )

    return run


def _baseline_then(backup: StepRun) -> StepRun:
    """Measure the soak gates' baseline before anything changes (kept in this step's
    detail, so a resumed run compares with the same one), then take the backup."""

    def run(ctx: StepContext) -> dict[str, Any]:
        try:
            baseline = measure_baseline(ctx, live_view(ctx))
        except FeedUnreadable as err:
            raise StepFailed(f"could not measure the baseline: {err}") from None
        return {**backup(ctx), "baseline": baseline}

    return run
