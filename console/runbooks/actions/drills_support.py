"""What every drill shares: its expectation, a steady writer during the fault, the
verification afterwards (every node back, equal digests, no acknowledged execution
lost) and the verdict that compares the measured recovery with the expectation.

A drill's steps are: state the expectation, inject-observe-heal (with the writer), and
verify-and-judge. The measurement travels from the second step to the third in this
worker process (`_MEASURED`); a run resumed by another worker after a crash between the
two still verifies the cluster, and says the measurement was lost instead of guessing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from console.clusters.daemon_client import DaemonError, node_urls
from console.events import journal
from console.runbooks import live
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import StepContext, StepFailed, StepRun
from daemon.contract import ContractError, parse_cluster_view
from daemon.localcluster.writer import SteadyWriter, executed_ids

PROBE_OP = {"id": "drill-probe", "name": "Drill probe", "handler": {"kind": "noop"}}
WRITER_RATE = 20.0
WARMUP_ACKS = 10
VERIFY_TIMEOUT_S = 120.0

_MEASURED: dict[int, dict[str, Any]] = {}


@dataclass(frozen=True)
class Expectation:
    fault: str  # what is injected, one line
    events: tuple[str, ...]  # the journal events / alerts that should appear
    recovery_s: float  # the longest acceptable time to a leader with quorum again

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "events": list(self.events)}


def expect(expectation: Expectation) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        _MEASURED.pop(ctx.cluster.pk, None)
        return {"expectation": expectation.as_json()}

    return run


def view_or_fail(ctx: StepContext) -> live.ClusterView:
    view = live.read_view(ctx.cluster, ctx.client)
    if view is None:
        raise StepFailed("no node of the cluster answered")
    return view


def _urls(ctx: StepContext) -> list[str]:
    nodes = lifecycle.manager(ctx)
    return [nodes.status(name).url for name in nodes.names()]


def _define_probe(ctx: StepContext, url: str) -> None:
    try:
        ctx.client.post(url, "/operations", json=PROBE_OP)
    except DaemonError as exc:
        if "exist" not in str(exc).lower() and "409" not in str(exc):
            raise StepFailed(f"could not define the drill's probe operation: {exc}") from None


def new_leader(ctx: StepContext, old: str | None, started: float) -> Callable[[], dict | None]:
    """A condition: some node other than `old` leads with quorum; the seconds it took."""

    def met() -> dict[str, Any] | None:
        # Asked of every other node: the first node that answers may be the one cut
        # off, and it may still claim the leadership it has lost.
        for url in node_urls(ctx.cluster):
            try:
                seen = parse_cluster_view(ctx.client.get(url, "/health/cluster"))
            except (DaemonError, ContractError):
                continue
            if seen.node != old and seen.has_quorum and seen.leader and seen.leader != old:
                elapsed = round(time.monotonic() - started, 2)
                return {"newLeader": seen.leader, "recoveryS": elapsed, "seenBy": seen.node}
        return None

    return met


def with_writer(
    ctx: StepContext, inject_observe_heal: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Run the fault with a steady writer on; check no acknowledged execution was lost."""
    urls = _urls(ctx)
    view = view_or_fail(ctx)
    _define_probe(ctx, live.url_of(view.member(view.leader)) if view.leader else urls[0])
    writer = SteadyWriter(
        lambda: urls,
        ctx.cluster.token_for("operate"),
        PROBE_OP["id"],
        WRITER_RATE,
        retry_for_s=15.0,
    )
    writer.start()
    try:
        ctx.wait_until(
            lambda: {} if writer.report.acknowledged >= WARMUP_ACKS else None,
            30,
            "the writer to start",
        )
        measured = inject_observe_heal()
    finally:
        report = writer.stop()
    leader_url = live.url_of(view_or_fail(ctx).member(view_or_fail(ctx).leader))
    seen = executed_ids(leader_url, ctx.cluster.token_for("admin"))
    lost = [i for i in writer.acknowledged_ids if i not in seen]
    measured["writer"] = {**report.as_json(), "lost": len(lost)}
    _MEASURED[ctx.cluster.pk] = measured
    return measured


def verify_and_judge(expectation: Expectation) -> StepRun:
    def run(ctx: StepContext) -> dict[str, Any]:
        def converged() -> dict[str, Any] | None:
            view = live.read_view(ctx.cluster, ctx.client)
            if view is None or not view.has_quorum or not view.leader:
                return None
            if not all(m.reachable for m in view.members):
                return None
            points = {(m.applied_index, m.digest) for m in view.members}
            if len(points) != 1:
                return None  # still catching up (or diverged: it fails at the timeout)
            index, digest = points.pop()
            return {"nodes": len(view.members), "appliedIndex": index, "digest": digest}

        verified = ctx.wait_until(converged, VERIFY_TIMEOUT_S, "every node back with equal digests")
        measured = _MEASURED.pop(ctx.cluster.pk, None)
        if measured is None:
            return {
                "verified": verified,
                "verdict": "inconclusive",
                "why": "measurement lost on resume",
            }
        recovery = measured.get("recoveryS")
        lost = measured["writer"]["lost"]
        reasons = []
        if recovery is None or recovery > expectation.recovery_s:
            reasons.append(f"recovery {recovery}s exceeds the expected {expectation.recovery_s}s")
        if lost:
            reasons.append(f"{lost} acknowledged executions lost")
        verdict = "fail" if reasons else "pass"
        journal.append(
            "drill.judged",
            actor="worker",
            cluster=ctx.cluster,
            fault=expectation.fault,
            verdict=verdict,
            recovery_s=recovery,
            expected_s=expectation.recovery_s,
            lost=lost,
        )
        return {
            "verified": verified,
            "expectation": expectation.as_json(),
            "measured": measured,
            "verdict": verdict,
            "why": "; ".join(reasons)
            or f"recovered in {recovery}s (expected ≤ {expectation.recovery_s}s)",
        }

    return run
