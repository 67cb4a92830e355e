"""Gates: conditions a step needs, checked again just before it runs.

Preflight judged the cluster when the run was requested; a gate judges it at the moment
the step would change it (minutes later, after earlier steps, or after a resume). Each
returns the value it measured, so the step's record shows why it ran or why it did not.
The actions of later issues (restart, stop, scale, upgrade) build their plans from these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from django.db.models import Q
from django.utils import timezone

from console.alerts.models import Alert
from console.runbooks.actions.base import Gate, GateResult, StepContext
from console.runbooks.live import ClusterView


def held(gate: Gate, seconds: float) -> Gate:
    """The same gate, to be held true for `seconds` before the step runs (a soak)."""
    return dataclasses.replace(gate, name=f"{gate.name}, for {seconds:g} s", hold_s=seconds)


def has_quorum() -> Gate:
    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        value = {"leader": view.leader, "hasQuorum": view.has_quorum}
        if view.has_quorum and view.leader:
            return GateResult(True, value)
        return GateResult(False, value, f"the cluster has no quorum (as seen by {view.node})")

    return Gate("the cluster has quorum and a leader", check)


def _majority_left(name: str, what: str, counts: Callable[..., bool]) -> Gate:
    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        left = sum(1 for m in view.members if m.name != name and counts(m))
        value = {what: left, "needed": view.quorum_size, "size": view.cluster_size}
        if left >= view.quorum_size:
            return GateResult(True, value)
        reason = (
            f"without {name}, {left} of {view.cluster_size} nodes would be {what}; "
            f"a majority ({view.quorum_size}) must be"
        )
        return GateResult(False, value, reason)

    return Gate(f"a majority stays {what} without {name}", check)


def majority_serving_without(name: str) -> Gate:
    """Draining `name` leaves a majority of members reachable and not draining."""
    return _majority_left(name, "serving", lambda m: m.reachable and not m.draining)


def quorum_survives_stopping(name: str) -> Gate:
    """Stopping `name` leaves a majority of members reachable: the cluster keeps quorum."""
    return _majority_left(name, "reachable", lambda m: m.reachable)


def lag_reason(view: ClusterView, name: str, max_lag_ms: float, max_lag_entries: int) -> str:
    """Why `name` is not caught up with the leader, or "" when it is."""
    member = view.member(name)
    if member is None:
        return f"node {name} is no longer a member"
    if member.lag_ms is None or member.lag_entries is None:
        return f"node {name}'s replication lag is unknown to the leader"
    if member.lag_ms > max_lag_ms or member.lag_entries > max_lag_entries:
        return (
            f"node {name} lags {member.lag_ms:.0f} ms / {member.lag_entries} entries "
            f"behind the leader (limit {max_lag_ms:.0f} ms / {max_lag_entries} entries)"
        )
    return ""


def caught_up(name: str, max_lag_ms: float, max_lag_entries: int) -> Gate:
    """`name` is a follower within the lag bounds, as the leader measures it."""

    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        member = view.member(name)
        value = {"lagMs": member.lag_ms, "lagEntries": member.lag_entries} if member else None
        reason = lag_reason(view, name, max_lag_ms, max_lag_entries)
        return GateResult(not reason, value, reason)

    return Gate(f"{name} has caught up with the leader", check)


def no_critical_alert() -> Gate:
    """No critical alert is firing on the cluster (silenced ones are the operator's call)."""

    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        now = timezone.now()
        firing = sorted(
            Alert.objects.filter(cluster=ctx.cluster, severity="critical", state="firing")
            .filter(Q(silenced_until__isnull=True) | Q(silenced_until__lte=now))
            .values_list("rule", flat=True)
        )
        if firing:
            return GateResult(False, firing, "critical alert firing: " + ", ".join(firing))
        return GateResult(True, [])

    return Gate("no critical alert is firing", check)
