"""Verify a drill with the shared history checker (`daemon.localcluster.checker`, the one
the robustness suite uses) and with the journal: the events and alerts its expectation
announced must have appeared while it ran.

The history judged is what the drill's own probe writer was told: its operation's
executions after the feed's last seq before the writer started, on every node. Other
clients' executions in that range are not the drill's to judge, except by the mirror
check, which compares every (seq, id) the console mirrored with the daemon's feed over
the same range, once the collector's cursor has reached the feed's end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from console.clusters.models import Cluster, Execution
from console.events.models import Event
from console.runbooks.actions.base import StepContext
from daemon.localcluster.checker import Check, HistoryVerdict, check_history
from daemon.localcluster.feeds import feed_records

MIRROR_TIMEOUT_S = 30.0  # the collector mirrors every second; a few ticks is plenty
EVENTS_TIMEOUT_S = 30.0  # the collector polls every second, alerts are evaluated each tick
# Kinds whose payload names a node: they count only when they name the drill's target.
NODE_KINDS = frozenset({"node.unreachable", "node.recovered", "node.state", "lag.high"})
RAISED = ("alert.pending", "alert.firing")
T = TypeVar("T")


@dataclass
class Window:
    """What the fault step hands the verify step (in this worker's memory)."""

    since_event: int  # the journal's last id before the fault
    from_seq: int  # the feed's latest seq before the probe writer started
    target: str | None
    was_leader: bool
    acked: list[str] = field(default_factory=list)
    allowed_unacked: int = 0  # refused or timed-out attempts: each may hide a commit


def last_event_id(cluster: Cluster) -> int:
    latest = Event.objects.filter(cluster=cluster).order_by("-id").first()
    return latest.id if latest else 0


def alert_raised(cluster: Cluster, since_event: int, rule: str) -> bool | None:
    """True once an alert of `rule` went pending or firing after `since_event`, else None
    (a `poll` condition)."""
    seen = Event.objects.filter(cluster=cluster, id__gt=since_event, kind__in=RAISED)
    return True if seen.filter(payload__rule=rule).exists() else None


def poll(ctx: StepContext, condition: Callable[[], T | None], timeout_s: float) -> T | None:
    """The condition's value once it has one, or None after `timeout_s` (a measurement:
    unlike ctx.wait_until, running out of time is an answer, not a failure)."""
    deadline = time.monotonic() + timeout_s
    while True:
        ctx.heartbeat()
        value = condition()
        if value is not None or time.monotonic() > deadline or ctx.cancel_requested():
            return value
        time.sleep(0.25)


def events_missing(
    cluster: Cluster, window: Window, kinds: list[str], alerts: list[str]
) -> list[str]:
    """The expected kinds (and `alert:<rule>` raised) not in the journal since the fault."""
    seen = Event.objects.filter(cluster=cluster, id__gt=window.since_event)
    missing = []
    for kind in kinds:
        found = seen.filter(kind=kind)
        if kind in NODE_KINDS and window.target:
            found = found.filter(payload__node=window.target)
        if not found.exists():
            missing.append(kind)
    for rule in alerts:
        if not alert_raised(cluster, window.since_event, rule):
            missing.append(f"alert:{rule}")
    return missing


def event_checks(
    ctx: StepContext, window: Window, kinds: list[str], alerts: list[str]
) -> list[Check]:
    def done() -> list[str] | None:
        left = events_missing(ctx.cluster, window, kinds, alerts)
        return None if left else []

    poll(ctx, done, EVENTS_TIMEOUT_S)
    left = events_missing(ctx.cluster, window, kinds, alerts)
    checks = []
    for kind in kinds:
        about = f" about {window.target}" if kind in NODE_KINDS and window.target else ""
        checks.append(
            Check(
                f"event {kind}{about}",
                kind not in left,
                "journaled" if kind not in left else f"not journaled within {EVENTS_TIMEOUT_S:g}s",
            )
        )
    for rule in alerts:
        raised = f"alert:{rule}" not in left
        checks.append(
            Check(
                f"alert {rule} raised",
                raised,
                "pending or firing" if raised else f"not raised within {EVENTS_TIMEOUT_S:g}s",
            )
        )
    return checks


def _feeds(
    urls: list[str], token: str, from_seq: int, op_id: str
) -> tuple[dict[str, list[str]], list[tuple[int, str]]]:
    """Per node URL, the probe's execution ids after `from_seq`; and one node's whole
    history over that range (every operation), for the mirror check."""
    feeds: dict[str, list[str]] = {}
    history: list[tuple[int, str]] = []
    for url in urls:
        records = feed_records(url, token, after=from_seq)
        feeds[url] = [r["id"] for r in records if r.get("operationId") == op_id]
        if not history:
            history = [(int(r["seq"]), str(r["id"])) for r in records]
    return feeds, history


def mirrored(cluster: Cluster, from_seq: int, upto: int) -> list[tuple[int, str]]:
    rows = Execution.objects.filter(cluster=cluster, seq__gt=from_seq, seq__lte=upto)
    return [(seq, eid) for seq, eid in rows.values_list("seq", "execution_id")]


def check_drill_history(
    ctx: StepContext,
    window: Window,
    urls: dict[str, str],
    points: dict[str, tuple[int, str]],
    op_id: str,
) -> HistoryVerdict:
    """`urls`: node name -> HTTP URL; `points`: node name -> (applied index, digest)."""
    token = ctx.cluster.token_for("read")
    try:
        by_url, history = _feeds(list(urls.values()), token, window.from_seq, op_id)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return HistoryVerdict(checks=[Check("read every node's feed", False, str(exc)[:200])])
    names = {url: name for name, url in urls.items()}
    feeds = {names[url]: ids for url, ids in by_url.items()}
    upto = max((seq for seq, _ in history), default=window.from_seq)

    def caught_up() -> bool | None:
        cursor = Cluster.objects.values_list("feed_cursor", flat=True).get(pk=ctx.cluster.pk)
        return True if cursor >= upto else None

    mirror_reached = poll(ctx, caught_up, MIRROR_TIMEOUT_S)
    verdict = check_history(
        window.acked,
        feeds,
        allowed_unacked=window.allowed_unacked,
        points=points,
        daemon_history=history,
        mirrored_history=mirrored(ctx.cluster, window.from_seq, upto),
    )
    if not mirror_reached:
        verdict.checks.append(
            Check(
                "the console mirrored the feed up to its end",
                False,
                f"its cursor did not reach seq {upto} within {MIRROR_TIMEOUT_S:g}s "
                "(is the collector running?)",
            )
        )
    return verdict
