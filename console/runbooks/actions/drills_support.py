"""What every drill shares: its expectation, a steady probe writer during the fault, the
verification afterwards (every node back; the shared history checker on what the writer
was told, and the console's mirror; the announced events and alerts journaled: see
`drills_verify`) and the verdict that compares the measurement with the expectation.

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

import httpx

from console.clusters.daemon_client import DaemonError, node_urls
from console.events import journal
from console.runbooks import live
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import StepContext, StepFailed, StepRun
from console.runbooks.actions.drills_verify import (
    Window,
    check_drill_history,
    event_checks,
    last_event_id,
)
from daemon.contract import ContractError, parse_cluster_view
from daemon.localcluster.checker import SAME_EVERYWHERE, check_history
from daemon.localcluster.feeds import feed_records, latest_seq
from daemon.localcluster.writer import SteadyWriter

PROBE_OP = {"id": "drill-probe", "name": "Drill probe", "handler": {"kind": "noop"}}
WRITER_RATE = 20.0
WARMUP_ACKS = 10
VERIFY_TIMEOUT_S = 120.0
SETTLE_READS = 5

_MEASURED: dict[int, tuple[dict[str, Any], Window]] = {}


@dataclass(frozen=True)
class Expectation:
    fault: str  # what is injected, one line
    events: tuple[str, ...]  # journal event kinds that must appear, whoever the target
    recovery_s: float  # the longest acceptable time to a leader with quorum again
    alerts: tuple[str, ...] = ()  # alert rules that must be raised (pending or firing)
    if_leader: tuple[str, ...] = ()  # more kinds when the target led
    if_follower: tuple[str, ...] = ()  # more kinds when it did not

    def kinds(self, was_leader: bool) -> list[str]:
        return [*self.events, *(self.if_leader if was_leader else self.if_follower)]

    def as_json(self) -> dict[str, Any]:
        shown = [
            *self.events,
            *(f"{k} (if it led)" for k in self.if_leader),
            *(f"{k} (if it followed)" for k in self.if_follower),
            *(f"alert {rule}" for rule in self.alerts),
        ]
        return {**asdict(self), "events": shown}


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
    """Run the fault with a steady probe writer on. The measurement names its `target`
    and whether it `wasLeader`; the writer's acknowledged ids, the journal's and the
    feed's positions before the fault go to the verify step (`Window`)."""
    urls = _urls(ctx)
    view = view_or_fail(ctx)
    leader_url = live.url_of(view.member(view.leader)) if view.leader else urls[0]
    _define_probe(ctx, leader_url)
    reader = ctx.cluster.token_for("read")  # the feed needs no more
    try:
        from_seq = latest_seq(leader_url, reader)
    except (httpx.HTTPError, ValueError) as exc:
        raise StepFailed(f"could not read the execution feed: {exc}") from None
    since_event = last_event_id(ctx.cluster)
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
    window = Window(
        since_event=since_event,
        from_seq=from_seq,
        target=measured.get("target"),
        was_leader=bool(measured.get("wasLeader")),
        acked=list(writer.acknowledged_ids),
        # Each refused or timed-out attempt may have committed all the same (a timeout
        # can hide a commit), and the drill's own probes (the disk drill's) too.
        allowed_unacked=sum(report.attempt_errors.values()) + measured.get("probes", 0),
    )
    # A first look, on the leader, right after the heal; the verify step runs every
    # check on every node once they have converged.
    now = view_or_fail(ctx)
    try:
        records = feed_records(live.url_of(now.member(now.leader)), reader, after=from_seq)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise StepFailed(f"could not read the leader's execution feed: {exc}") from None
    ids = [r["id"] for r in records if r.get("operationId") == PROBE_OP["id"]]
    first_look = check_history(window.acked, {now.leader or "leader": ids})
    lost = max((n["missingAcked"] for n in first_look.nodes.values()), default=0)
    measured["writer"] = {**report.as_json(), "lost": lost}
    _MEASURED[ctx.cluster.pk] = (measured, window)
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
            return {
                "nodes": len(view.members),
                "appliedIndex": index,
                "digest": digest,
                "urls": {m.name: live.url_of(m) for m in view.members},
            }

        verified = ctx.wait_until(converged, VERIFY_TIMEOUT_S, "every node back with equal digests")
        kept = _MEASURED.pop(ctx.cluster.pk, None)
        if kept is None:
            verified.pop("urls")
            return {
                "verified": verified,
                "verdict": "inconclusive",
                "why": "measurement lost on resume",
            }
        measured, window = kept
        # A node that timed out a write during the fault keeps retrying its record in the
        # background (daemon/node.py, nothing is lost), so one can commit after the nodes
        # converged and between two feed reads: converge and read again, a few times,
        # before calling different sets a split.
        for attempt in range(SETTLE_READS):
            urls = verified.pop("urls")
            point = (verified["appliedIndex"], verified["digest"])
            history = check_drill_history(
                ctx, window, urls, {name: point for name in urls}, PROBE_OP["id"]
            )
            same = all(c.ok for c in history.checks if c.name == SAME_EVERYWHERE)
            if same or attempt == SETTLE_READS - 1:
                break
            time.sleep(1.0)
            verified = ctx.wait_until(
                converged, VERIFY_TIMEOUT_S, "every node back with equal digests"
            )
        kinds = expectation.kinds(window.was_leader)
        checks = [*history.checks, *event_checks(ctx, window, kinds, list(expectation.alerts))]
        recovery = measured.get("recoveryS")
        lost = max((n["missingAcked"] for n in history.nodes.values()), default=0)
        reasons = []
        if recovery is None or recovery > expectation.recovery_s:
            reasons.append(f"recovery {recovery}s exceeds the expected {expectation.recovery_s}s")
        reasons += [f"{c.name}: {c.detail}" for c in checks if not c.ok]
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
            "checks": [c.as_json() for c in checks],
            "history": {"acked": history.acked, "nodes": history.nodes},
            "verdict": verdict,
            "why": "; ".join(reasons)
            or f"recovered in {recovery}s (expected ≤ {expectation.recovery_s}s); "
            f"all {len(checks)} checks passed",
        }

    return run
