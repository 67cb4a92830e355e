"""The soak gates of an upgraded node, held for the soak time before it is undrained.

Some gates compare with what they saw at their first check (the term, where the soak's
executions window starts): that state lives in the gate's closure, which the plan builds
afresh for every run and every resume, so a resume starts a new soak window.

The error-ratio and p95 gates read the cluster's executions from the daemons themselves
(`soak_feed`), against the baseline the run measured just before the upgrade and stored
in its first step's detail (so a resumed run compares with the same baseline). A plan
without such a step (the quick rollback) measures its baseline at the soak's first check.
A soak window with no execution at all proves nothing: it passes only if the baseline
had none either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from console.runbooks import gates
from console.runbooks.actions.base import Gate, GateResult, StepContext
from console.runbooks.actions.soak_feed import FeedUnreadable, SoakWindow, measure_baseline
from console.runbooks.live import ClusterView
from console.runbooks.models import RunbookStep

NO_EXECUTIONS = "no executions in the window"
# Handler durations of quick operations are fractions of a millisecond, and a node
# busy with Raft work (or a busy machine) delays a handler by a few GIL switch
# intervals (5 ms each): a relative margin alone fails on that noise, so the p95
# limit is never below the baseline plus this much.
P95_SLACK_MS = 50.0
# The last checks of a soak judge an empty window (the runner's final round comes at
# most this long before the gate's own clock reaches the soak time).
FINAL_ROUND_S = 1.0
# Or sooner, once the baseline's rate would have given this many executions by now (a
# round slower than FINAL_ROUND_S must not let an empty window pass; a leader election's
# pause in commits is far shorter than this many executions at any real rate).
EXPECTED_BY_NOW = 100


class Margins(Protocol):
    soakS: float
    maxErrorRatioIncrease: float
    maxP95Increase: float


def soak_gates(
    name: str, release: str, params: Margins, max_lag_ms: float, max_lag_entries: int
) -> tuple[Gate, ...]:
    # The checkout ("") reports no release name of its own to compare with.
    reports = (reports_release(name, release),) if release else ()
    measured = Measured(params.soakS)
    found = (
        *reports,
        gates.has_quorum(),
        gates.caught_up(name, max_lag_ms, max_lag_entries),
        no_unplanned_leader_change(),
        error_ratio_no_worse(measured, params.maxErrorRatioIncrease),
        p95_no_worse(measured, params.maxP95Increase),
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


def stored_baseline(ctx: StepContext) -> dict[str, Any] | None:
    """The baseline an earlier step of the cluster's running run measured, if any."""
    if ctx.cluster is None:
        return None
    details = RunbookStep.objects.filter(
        run__cluster=ctx.cluster, run__status__in=("running", "cancelling"), status="succeeded"
    ).values_list("detail", flat=True)
    for detail in details:
        if isinstance(detail, dict) and isinstance(detail.get("baseline"), dict):
            return detail["baseline"]
    return None


class Measured:
    """The soak window and the baseline, shared by the error-ratio and p95 gates."""

    def __init__(self, soak_s: float) -> None:
        self.soak_s = soak_s
        self.window = SoakWindow()
        self.baseline: dict[str, Any] | None = None
        self.baseline_from = ""

    def refresh(self, view: ClusterView, ctx: StepContext) -> str:
        """Read what is new; "" or why the executions could not be read."""
        try:
            if self.baseline is None:
                self.baseline, self.baseline_from = stored_baseline(ctx), "before the upgrade"
                if self.baseline is None:
                    self.baseline = measure_baseline(ctx, view)
                    self.baseline_from = "before this soak"
            self.window.refresh(ctx, view)
        except FeedUnreadable as err:
            return f"the executions feed could not be read: {err}"
        return ""

    def empty(self, value: dict[str, Any]) -> GateResult | None:
        """The verdict on a window without executions (None when it has some)."""
        if self.window.tally.executions:
            return None
        base = int((self.baseline or {}).get("executions") or 0)
        if not base:
            return GateResult(True, value | {"note": NO_EXECUTIONS + " (nor in the baseline)"})
        if self.soak_s <= 0:
            return GateResult(True, value | {"note": NO_EXECUTIONS + " (no soak: soakS is 0)"})
        window_s = float((self.baseline or {}).get("windowS") or 60.0)
        expected = base / window_s * self.window.elapsed_s
        ending = self.window.elapsed_s >= self.soak_s - FINAL_ROUND_S
        if not ending and expected < EXPECTED_BY_NOW:
            return GateResult(True, value | {"note": NO_EXECUTIONS + " yet"})
        reason = (
            f"{NO_EXECUTIONS} of {self.window.elapsed_s:.1f} s, though the baseline had "
            f"{base} in {window_s:g} s (~{expected:.0f} expected by now): nothing shows "
            "the cluster serves on the new release"
        )
        return GateResult(False, value | {"note": NO_EXECUTIONS}, reason)

    def common(self) -> dict[str, Any]:
        tally = self.window.tally
        value = {"executions": tally.executions, "failed": tally.failed}
        value["windowS"] = round(self.window.elapsed_s, 1)
        value["baselineExecutions"] = (self.baseline or {}).get("executions")
        value["baselineFrom"] = self.baseline_from
        return value | ({"gap": True} if self.window.gap else {})


def _measured_gate(
    name: str, measured: Measured, judge: Callable[[Measured, dict[str, Any]], GateResult]
) -> Gate:
    def check(view: ClusterView, ctx: StepContext) -> GateResult:
        if problem := measured.refresh(view, ctx):
            return GateResult(False, None, problem)
        return judge(measured, measured.common())

    return Gate(name, check)


def error_ratio_no_worse(measured: Measured, max_rise: float) -> Gate:
    """The soak window's error ratio (failed / all executions, as a ratio: not the
    runbook's integer percentage test) at most the baseline's plus `max_rise`."""

    def judge(m: Measured, value: dict[str, Any]) -> GateResult:
        base = (m.baseline or {}).get("errorRatio")
        limit = round((base or 0.0) + max_rise, 4)
        value = {"errorRatio": m.window.tally.error_ratio, "limit": limit, "baseline": base}
        value |= m.common()
        if (empty := m.empty(value)) is not None:
            return empty
        ratio = m.window.tally.error_ratio or 0.0
        if ratio <= limit:
            return GateResult(True, value)
        on = ", ".join(f"{n} {c}" for n, c in sorted(m.window.tally.failed_on.items()))
        reason = (
            f"error ratio {ratio:.2%} ({m.window.tally.failed} of {m.window.tally.executions} "
            f"executions failed; on {on}) above its limit {limit:.2%} (baseline "
            f"{base or 0.0:.2%} + {max_rise:.2%})"
        )
        return GateResult(False, value, reason)

    return _measured_gate("error ratio no worse than before the upgrade", measured, judge)


def p95_no_worse(measured: Measured, max_rise: float) -> Gate:
    """The soak window's p95 handler duration at most the baseline's times (1 +
    `max_rise`), or its plus P95_SLACK_MS when that is more; not compared when the
    baseline had no executions."""

    def judge(m: Measured, value: dict[str, Any]) -> GateResult:
        base = (m.baseline or {}).get("p95Ms")
        limit = (
            None if base is None else round(max(base * (1.0 + max_rise), base + P95_SLACK_MS), 3)
        )
        value = {"p95Ms": m.window.tally.p95_ms, "limitMs": limit, "baselineMs": base}
        value |= m.common()
        if (empty := m.empty(value)) is not None:
            return empty
        p95 = m.window.tally.p95_ms or 0.0
        if limit is None:
            return GateResult(True, value | {"note": "no baseline p95 to compare with"})
        if p95 <= limit:
            return GateResult(True, value)
        reason = (
            f"p95 {p95:.1f} ms above its limit {limit:.1f} ms (the larger of baseline "
            f"{base:.1f} ms x {1 + max_rise:g} and baseline + {P95_SLACK_MS:g} ms)"
        )
        return GateResult(False, value, reason)

    return _measured_gate("p95 latency no worse than before the upgrade", measured, judge)
