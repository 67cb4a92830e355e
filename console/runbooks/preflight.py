"""Is this action safe on this cluster right now, and if not, why not?

One function serves the button's dry-run, the real request and the worker's re-check at
the start of the run, so all three give the same answer for the same cluster state. It
only reads: the database (is a run active?) and the live cluster (through its nodes'
HTTP API, not the collector's last poll). `client` is the way in for tests: a fake
client answering for a fake cluster exercises the same code without daemon processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.clusters.daemon_client import DaemonClient
from console.clusters.models import Cluster
from console.runbooks import live
from console.runbooks.actions import ACTIONS
from console.runbooks.actions.base import Step
from console.runbooks.models import ACTIVE_RUN_STATES, RunbookRun


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: list[str]
    steps: list[str]  # the step names the run would go through, in order
    params: dict[str, Any] = field(default_factory=dict)  # cleaned
    plan: list[Step] = field(default_factory=list, repr=False)

    def __iter__(self):
        # `ok, reasons, steps = check(...)` reads as the contract says.
        return iter((self.ok, self.reasons, self.steps))


def refused(*reasons: str, params: dict[str, Any] | None = None) -> Verdict:
    return Verdict(ok=False, reasons=list(reasons), steps=[], params=params or {})


def active_run_reason(cluster: Cluster, exclude_run_id: int | None = None) -> str | None:
    active = RunbookRun.objects.filter(cluster=cluster, status__in=ACTIVE_RUN_STATES)
    if exclude_run_id is not None:
        active = active.exclude(id=exclude_run_id)
    run = active.order_by("id").first()
    return in_progress_reason(run.id) if run else None


def in_progress_reason(run_id: int) -> str:
    return f"a run is already in progress on this cluster (run #{run_id})"


def unknown_action_reason(action: str) -> str:
    return f"unknown action {action[:40]!r}; choose one of {', '.join(ACTIONS)}"


def check(
    cluster: Cluster,
    action: str,
    params: Any,
    *,
    exclude_run_id: int | None = None,
    client: DaemonClient | None = None,
) -> Verdict:
    return _judge(cluster, action, params, exclude_run_id, client, run_checks=True)


def replan(cluster: Cluster, action: str, params: Any, client: DaemonClient) -> Verdict:
    """The plan for a resumed run: the same steps, without the preflight's refusals.

    The run already changed the cluster (a drained node would now be "already
    draining"), so its checks no longer apply; each remaining step's gates do."""
    return _judge(cluster, action, params, None, client, run_checks=False)


def _judge(
    cluster: Cluster,
    action: str,
    params: Any,
    exclude_run_id: int | None,
    client: DaemonClient | None,
    run_checks: bool,
) -> Verdict:
    handler = ACTIONS.get(action)
    if handler is None:
        return refused(unknown_action_reason(action))
    typed, reasons = handler.parse(params if params is not None else {})
    if typed is None:
        return refused(*reasons)
    cleaned = typed.model_dump(mode="json")
    if run_checks and (busy := active_run_reason(cluster, exclude_run_id)):
        return refused(busy, params=cleaned)
    client = client or live.client_for(cluster)
    view = live.read_view(cluster, client)
    if view is None:
        return refused(
            f"no node of cluster {cluster.name} answered; is it running?", params=cleaned
        )
    if run_checks and (reasons := handler.check(view, typed, client)):
        return refused(*reasons, params=cleaned)
    typed = handler.settle(view, typed, client)
    cleaned = typed.model_dump(mode="json")
    try:
        plan = handler.plan(view, typed)
    except KeyError as missing:  # only when replanning: a node left the cluster meanwhile
        return refused(f"node {missing.args[0]} is no longer a member of this cluster")
    return Verdict(ok=True, reasons=[], steps=[s.name for s in plan], params=cleaned, plan=plan)
