"""The soak gates of an upgraded node, held for the soak time before it is undrained.

Some gates compare with what they saw at their first check (the term, the error ratio
and p95 of the minute before): the state lives in the gate's closure, which the plan
builds afresh for every run and every resume, so a resume starts a new soak window.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from django.db.models import Avg
from django.utils import timezone

from console.clusters.models import Sample
from console.runbooks import gates
from console.runbooks.actions.base import Gate, GateResult, StepContext
from console.runbooks.live import ClusterView

BASELINE_WINDOW = timedelta(seconds=60)


class Margins(Protocol):
    soakS: float
    maxErrorRatioIncrease: float
    maxP95Increase: float


def soak_gates(
    name: str, release: str, params: Margins, max_lag_ms: float, max_lag_entries: int
) -> tuple[Gate, ...]:
    # The checkout ("") reports no release name of its own to compare with.
    reports = (reports_release(name, release),) if release else ()
    found = (
        *reports,
        gates.has_quorum(),
        gates.caught_up(name, max_lag_ms, max_lag_entries),
        no_unplanned_leader_change(),
        no_worse_than_baseline(params.maxErrorRatioIncrease, params.maxP95Increase),
    )
    return tuple(gates.held(gate, params.soakS) for gate in found)


def reports_release(name: str, release: str) -> Gate:
    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        member = view.member(name)
        seen = member.build.release if member and member.build else None
        if seen == release:
            return GateResult(True, seen)
        return GateResult(False, seen, f"{name} reports release {seen!r}, not {release!r}")

    return Gate(f"{name} reports release {release}", check)


def no_unplanned_leader_change() -> Gate:
    first: dict[str, Any] = {}

    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        first.setdefault("leader", view.leader)
        first.setdefault("term", view.term)
        value = {"leader": view.leader, "term": view.term, "since": first["term"]}
        if view.leader == first["leader"] and view.term == first["term"]:
            return GateResult(True, value)
        return GateResult(
            False, value, f"the leader changed during the soak ({first['leader']} → {view.leader})"
        )

    return Gate("no unplanned leader change", check)


def _window(cluster: Any, since: Any, until: Any = None) -> dict[str, float | None]:
    rows = Sample.objects.filter(cluster=cluster, at__gte=since)
    if until is not None:
        rows = rows.filter(at__lt=until)
    got = rows.aggregate(success=Avg("success_rate"), p95=Avg("p95_ms"))
    success = got["success"]
    return {
        "errorRatio": None if success is None else round(1.0 - success, 4),
        "p95Ms": None if got["p95"] is None else round(got["p95"], 1),
    }


def no_worse_than_baseline(max_ratio_rise: float, max_p95_rise: float) -> Gate:
    """Error ratio (1 - success rate) and p95 over the soak against the minute before
    it, from the collector's samples: a ratio, not the runbook's integer test."""
    first: dict[str, Any] = {}

    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        now = timezone.now()
        if "at" not in first:
            first["at"] = now
            first["baseline"] = _window(ctx.cluster, now - BASELINE_WINDOW, now)
        base, soak = first["baseline"], _window(ctx.cluster, first["at"])
        value = {"baseline": base, "soak": soak}
        problems = []
        if soak["errorRatio"] is not None:
            limit = (base["errorRatio"] or 0.0) + max_ratio_rise
            value["errorRatioLimit"] = round(limit, 4)
            if soak["errorRatio"] > limit:
                problems.append(f"error ratio {soak['errorRatio']:.2%} above {limit:.2%}")
        if soak["p95Ms"] is not None and base["p95Ms"] is not None:
            limit = base["p95Ms"] * (1.0 + max_p95_rise)
            value["p95Limit"] = round(limit, 1)
            if soak["p95Ms"] > limit:
                problems.append(f"p95 {soak['p95Ms']:.0f} ms above {limit:.0f} ms")
        if problems:
            return GateResult(False, value, "worse than before the upgrade: " + "; ".join(problems))
        return GateResult(True, value)

    return Gate("error ratio and p95 no worse than before", check)
