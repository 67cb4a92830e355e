"""Is this action safe on this cluster right now, and if not, why not?

One function serves the button's dry-run, the real request and the worker's re-check at
the start of the run, so all three give the same answer for the same cluster state. It
only reads: the database (is a run active?) and the live cluster (through its nodes'
HTTP API, not the collector's last poll).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.clusters.models import Cluster
from console.runbooks.actions import ACTIONS
from console.runbooks.actions.base import Step
from console.runbooks.live import client_for, read_view
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


def check(
    cluster: Cluster, action: str, params: Any, *, exclude_run_id: int | None = None
) -> Verdict:
    module = ACTIONS.get(action)
    if module is None:
        return refused(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    cleaned, reasons = module.clean(params if params is not None else {})
    if reasons:
        return refused(*reasons)
    if busy := active_run_reason(cluster, exclude_run_id):
        return refused(busy, params=cleaned)
    client = client_for(cluster)
    view = read_view(cluster, client)
    if view is None:
        return refused(
            f"no node of cluster {cluster.name} answered; is it running?", params=cleaned
        )
    reasons = module.check(view, cleaned, client)
    if reasons:
        return refused(*reasons, params=cleaned)
    plan = module.plan(view, cleaned)
    return Verdict(ok=True, reasons=[], steps=[s.name for s in plan], params=cleaned, plan=plan)
