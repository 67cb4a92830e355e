"""Carry out one run, step by step, leaving a truthful record at every point.

Called by the Celery task; a plain function so the logic reads without Celery. The run
row is claimed with a conditional UPDATE (queued -> running), so a redelivered or
duplicated task message can never start it twice. Every database write after that is
conditional on the run still being `running`: if the reaper declared it stale while
this worker was frozen, the worker stops instead of overwriting the verdict.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from console.clusters.daemon_client import DaemonError
from console.events import journal
from console.runbooks import preflight
from console.runbooks.actions.base import Step, StepContext, StepFailed
from console.runbooks.live import client_for
from console.runbooks.models import RunbookRun, RunbookStep
from console.runbooks.services import finish_run, journal_step

log = logging.getLogger("console.runbooks")
ACTOR = "worker"


class RunAbandoned(Exception):
    """The run is no longer ours (it was reaped as stale); stop without writing."""


def execute(run_id: int) -> str | None:
    """Run `run_id` if it is still queued; return its final status (None if not ours)."""
    now = timezone.now()
    claimed = RunbookRun.objects.filter(id=run_id, status="queued").update(
        status="running", started_at=now, heartbeat_at=now
    )
    if not claimed:
        log.info("run #%s is not queued any more; nothing to do", run_id)
        return None
    run = RunbookRun.objects.select_related("cluster").get(id=run_id)
    journal.append("run.started", actor=ACTOR, cluster=run.cluster, run_id=run.id)
    try:
        return _execute(run)
    except RunAbandoned:
        log.warning("run #%s was taken from this worker (stale); stopping", run_id)
        return None
    except Exception as err:  # whatever breaks, the run must not stay `running`
        log.exception("run #%s crashed", run_id)
        _fail_running_steps(run, f"the worker hit an internal error: {err}")
        finish_run(run.id, "failed", f"internal error: {err}", actor=ACTOR)
        return "failed"


def _execute(run: RunbookRun) -> str:
    # The cluster may have changed since the request: check again, exactly as before.
    verdict = preflight.check(run.cluster, run.action, run.params, exclude_run_id=run.id)
    stored = list(run.steps.order_by("position"))
    if not verdict.ok:
        return _refuse(run, verdict.reasons)
    if [s.name for s in stored] != verdict.steps:
        return _refuse(run, ["the cluster changed since the run was requested; request it again"])
    ctx = StepContext(client=client_for(run.cluster), heartbeat=lambda: heartbeat(run.id))
    for row, step in zip(stored, verdict.plan, strict=True):
        error = _run_step(run, row, step, ctx)
        if error:
            finish_run(run.id, "failed", f"step {row.position} ({row.name}) failed: {error}")
            return "failed"
    finish_run(run.id, "succeeded", from_states=("running",))
    return "succeeded"


def _refuse(run: RunbookRun, reasons: list[str]) -> str:
    journal.append("run.refused", actor=ACTOR, cluster=run.cluster, run_id=run.id, reasons=reasons)
    finish_run(run.id, "refused", "refused at start: " + "; ".join(reasons), actor=ACTOR)
    return "refused"


def _run_step(run: RunbookRun, row: RunbookStep, step: Step, ctx: StepContext) -> str | None:
    """Do one step, recording its start and end; the error message if it failed."""
    heartbeat(run.id)
    row.status, row.started_at = "running", timezone.now()
    row.save(update_fields=["status", "started_at"])
    journal_step("step.started", run, row, actor=ACTOR)
    error = None
    try:
        detail = step.run(ctx)
    except (StepFailed, DaemonError) as err:
        error, detail = str(err), {"error": str(err)}
    heartbeat(run.id)  # and never record an ending over the reaper's verdict
    row.status = "failed" if error else "succeeded"
    row.finished_at, row.detail = timezone.now(), detail
    row.save(update_fields=["status", "finished_at", "detail"])
    journal_step("step.finished", run, row, actor=ACTOR)
    return error


def heartbeat(run_id: int) -> None:
    alive = RunbookRun.objects.filter(id=run_id, status="running").update(
        heartbeat_at=timezone.now()
    )
    if not alive:
        raise RunAbandoned(run_id)


def _fail_running_steps(run: RunbookRun, error: str) -> None:
    for row in run.steps.filter(status="running"):
        row.status, row.finished_at = "failed", timezone.now()
        row.detail = {**row.detail, "error": error}
        row.save(update_fields=["status", "finished_at", "detail"])
        journal_step("step.finished", run, row, actor=ACTOR)
