"""A run's progress per node, derived from its steps: what the run page and the API show.

A multi-node run (an upgrade, a quick rollback) is a list of steps whose names say which
node they act on and what they do ("drain X", "stop X", "start X on release R", "wait
until X has rejoined and caught up", "soak X on release R", "undrain X", and
"rollback: ..." for the steps added by a rollback). Nothing else records "where is node
X now", so it is read back from those names: `parse_step` is the one place that knows
them. The estimate of what remains uses this run's own finished nodes: the average time
one node took, times the nodes left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.utils import timezone

from console.runbooks.models import ACTIVE_RUN_STATES
from console.runbooks.progress_gates import GateView, gate_view

ROLLBACK = "rollback: "
CHECKOUT = "the checkout"  # how step names call the release "" (the checked-out tree)
STARTED = ("running", "succeeded", "failed")

# (pattern on the step name without "rollback: ", phase). The node is `node`; a start
# step names the release it starts on.
PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), phase)
    for p, phase in [
        (r"drain (?P<node>\S+)", "drain"),
        (r"ask (?P<node>\S+) to drain", "drain"),
        (r"confirm (?P<node>\S+) reports draining", "drain"),
        (r"wait for (?P<node>\S+)'s work to finish", "drain"),
        (r"hand leadership away from (?P<node>\S+) if it leads", "handover"),
        (r"wait until the others lead without (?P<node>\S+)", "handover"),
        (r"stop (?P<node>\S+)", "stop"),
        (r"start (?P<node>\S+?)(?: on (?:release )?(?P<release>.+))?", "start"),
        (r"wait until (?P<node>\S+) has rejoined and caught up", "catch up"),
        (r"confirm (?P<node>\S+) is ready", "catch up"),
        (r"soak (?P<node>\S+) on release (?P<release>.+)", "soak"),
        (r"undrain (?P<node>\S+)", "undrain"),
        (r"ask (?P<node>\S+) to undrain", "undrain"),
        (r"snapshot (?P<node>\S+)", "snapshot"),
    ]
]


class StepLike(Protocol):
    position: int
    name: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    gates: list[dict[str, Any]]


@dataclass(frozen=True)
class ParsedStep:
    node: str | None  # None for a step on the whole cluster ("snapshot every node ...")
    phase: str  # "drain", "stop", ...; "rollback: stop" for a rollback's step
    rollback: bool
    release: str | None  # the release a start step starts on ("" = the checkout)


def parse_step(name: str) -> ParsedStep:
    rollback = name.startswith(ROLLBACK)
    bare = name.removeprefix(ROLLBACK)
    for pattern, phase in PATTERNS:
        if (found := pattern.fullmatch(bare)) is not None:
            release = found.groupdict().get("release")
            if release == CHECKOUT:
                release = ""
            shown = ROLLBACK + phase if rollback else phase
            return ParsedStep(found.group("node"), shown, rollback, release)
    return ParsedStep(None, "", rollback, None)


@dataclass
class NodeProgress:
    node: str
    # pending | in progress | soaking | done | failed | skipped | stopped | rolling back |
    # rolled back
    state: str
    phase: str  # the phase of `step`; "" while nothing of this node has started
    step: str  # the node's step now (or its last one; its first while pending)
    release_before: str | None  # "" = the checkout; None = not known
    release_after: str | None
    # From its first step's start to its last step's end (or now): its rollback's alone
    # once it has one, so the estimate of a rollback times rollbacks.
    elapsed_s: float | None


@dataclass
class RunProgress:
    nodes: list[NodeProgress]
    nodes_done: int
    current_step: str | None  # the step running or holding its gates, if any
    gates_step: str | None  # the step whose gates `gates` are (current, or the last checked)
    gates: list[GateView] = field(default_factory=list)
    elapsed_s: float | None = None  # since the run started (to its end once finished)
    remaining_s: float | None = None  # None: not known yet (or nothing remains)
    estimate: str = ""  # remaining_s in words, "estimating…", or "" once finished


def run_progress(run: Any, now: datetime | None = None) -> RunProgress:
    """The progress of `run` (a RunbookRun with its steps, prefetched or not)."""
    steps = sorted(run.steps.all(), key=lambda s: s.position)
    # Each node's release before the run, as the upgrade fixed it (`settle`); whatever
    # else a stored run holds there is not a release to show.
    found = run.params.get("previous") if isinstance(run.params, dict) else None
    previous = {
        str(node): release
        for node, release in (found.items() if isinstance(found, dict) else [])
        if isinstance(release, str)
    }
    return build(steps, run.status, run.started_at, run.finished_at, previous, now)


def build(
    steps: Sequence[StepLike],
    status: str,
    started_at: datetime | None,
    finished_at: datetime | None,
    previous: dict[str, str],
    now: datetime | None = None,
) -> RunProgress:
    now = now or timezone.now()
    parsed = [(step, parse_step(step.name)) for step in steps]
    order: list[str] = []
    for _step, info in parsed:
        if info.node and info.node not in order:
            order.append(info.node)
    nodes = [_node(name, parsed, previous, now) for name in order]
    current = next((s for s in steps if _is_current(s)), None)
    checked = current if current is not None and current.gates else _last_checked(steps)
    elapsed = _elapsed(started_at, finished_at, now)
    remaining, words = _estimate(nodes, status)
    return RunProgress(
        nodes=nodes,
        nodes_done=sum(1 for n in nodes if n.state in ("done", "rolled back")),
        current_step=current.name if current is not None else None,
        gates_step=checked.name if checked is not None else None,
        gates=[gate_view(g) for g in checked.gates] if checked is not None else [],
        elapsed_s=elapsed,
        remaining_s=remaining,
        estimate=words,
    )


def _is_current(step: StepLike) -> bool:
    # A step holding its gates (a soak) is still `pending`, but its gates are recorded.
    return step.status == "running" or (step.status == "pending" and bool(step.gates))


def _last_checked(steps: Sequence[StepLike]) -> StepLike | None:
    return next((s for s in reversed(steps) if s.gates and s.status != "skipped"), None)


def _node(
    name: str, parsed: list[tuple[StepLike, ParsedStep]], previous: dict[str, str], now: datetime
) -> NodeProgress:
    mine = [(s, p) for s, p in parsed if p.node == name]
    plan = [s for s, p in mine if not p.rollback]
    undo = [s for s, p in mine if p.rollback]
    active = undo or plan  # a rollback's steps, once there are any, say where the node is
    at = next((s for s in active if _is_current(s)), None)
    if at is None:
        begun = [s for s in active if s.status in STARTED]
        at = begun[-1] if begun else active[0]
    info = parse_step(at.name)
    state = _state(plan, undo, info)
    after = next((p.release for s, p in mine if not p.rollback and p.phase == "start"), None)
    return NodeProgress(
        node=name,
        state=state,
        phase="" if state in ("pending", "skipped") else info.phase,
        step=at.name,
        release_before=previous.get(name),
        release_after=after,
        elapsed_s=_span(active, now),
    )


def _state(plan: list[StepLike], undo: list[StepLike], at: ParsedStep) -> str:
    if undo:
        if all(s.status == "succeeded" for s in undo):
            return "rolled back"
        return "failed" if any(s.status == "failed" for s in undo) else "rolling back"
    if any(s.status == "failed" for s in plan):
        return "failed"
    if all(s.status == "succeeded" for s in plan):
        return "done"
    if not any(s.status in STARTED or s.gates for s in plan):
        return "skipped" if all(s.status == "skipped" for s in plan) else "pending"
    if all(s.status in ("succeeded", "skipped") for s in plan):
        return "stopped"  # part-way, and the run ended without a rollback
    return "soaking" if at.phase == "soak" and not at.rollback else "in progress"


def _span(steps: Iterable[StepLike], now: datetime) -> float | None:
    starts = [s.started_at for s in steps if s.started_at is not None]
    if not starts:
        return None
    ends = [s.finished_at for s in steps if s.finished_at is not None]
    running = any(_is_current(s) for s in steps)
    end = now if running or not ends else max(ends)
    return max((end - min(starts)).total_seconds(), 0.0)


def _elapsed(started: datetime | None, finished: datetime | None, now: datetime) -> float | None:
    if started is None:
        return None
    return max(((finished or now) - started).total_seconds(), 0.0)


def _estimate(nodes: list[NodeProgress], status: str) -> tuple[float | None, str]:
    """Average time of a finished node times the nodes left (less what the current one has done).

    While rolling back, the nodes to count are those the rollback still has to put back,
    timed by the nodes it already put back (an upgrade's node times do not apply)."""
    if status not in ACTIVE_RUN_STATES:
        return None, ""
    if status == "paused":  # nothing moves until someone resumes (or promotes) it
        return None, "paused"
    if any(n.state in ("rolling back", "rolled back") for n in nodes):
        finished = [n for n in nodes if n.state == "rolled back"]
        left = [n for n in nodes if n.state == "rolling back"]
    else:
        finished = [n for n in nodes if n.state == "done"]
        left = [n for n in nodes if n.state in ("pending", "in progress", "soaking")]
    times = [n.elapsed_s for n in finished if n.elapsed_s is not None]
    if not left:
        return 0.0, "almost done"
    if not times:
        return None, "estimating…"
    average = sum(times) / len(times)
    remaining = sum(max(average - (n.elapsed_s or 0.0), 0.0) for n in left)
    return remaining, "about " + duration(remaining)


def duration(seconds: float | None) -> str:
    """42 s, 3 min 05 s, 1 h 02 min: short and steady while it counts."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
