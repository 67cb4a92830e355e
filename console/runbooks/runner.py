"""Carry out one run, step by step, leaving a truthful record at every point.

Called by the Celery task; a plain function so the logic reads without Celery. The run
row is claimed with a conditional UPDATE (queued -> running), so a redelivered or
duplicated task message can never start it twice. Every database write after that is
conditional on the run still being ours (`running` or `cancelling`): if the reaper
declared it stale while this worker was frozen, the worker stops instead of
overwriting the verdict.

Before each step: the operator's cancel is honoured, then the step's gates are checked
on a fresh view of the cluster, and their values recorded on the step. A resumed run
skips the steps that already succeeded.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.utils import timezone

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.events import journal
from console.runbooks import conf, live, preflight, rollback
from console.runbooks.actions.base import Step, StepCancelled, StepContext, StepFailed
from console.runbooks.models import RunbookRun, RunbookStep
from console.runbooks.records import end_run, journal_step

log = logging.getLogger("console.runbooks")
ACTOR = "worker"
OURS = ("running", "cancelling")


class RunAbandoned(Exception):
    """The run is no longer ours (it was reaped as stale); stop without writing."""


def execute(run_id: int, client: DaemonClient | None = None) -> str | None:
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
        return _execute(run, client or live.client_for(run.cluster))
    except RunAbandoned:
        log.warning("run #%s was taken from this worker (stale); stopping", run_id)
        return None
    except Exception as err:  # whatever breaks, the run must not stay `running`
        log.exception("run #%s crashed", run_id)
        error = f"the worker hit an internal error: {err}"
        end_run(run.id, "failed", f"internal error: {err}", actor=ACTOR, interrupted=error)
        return "failed"


def _execute(run: RunbookRun, client: DaemonClient) -> str:
    stored = list(run.steps.order_by("position"))
    if run.resumed_count:
        verdict = preflight.replan(run.cluster, run.action, run.params, client)
        if not verdict.ok:
            return _end(run, "failed", "could not resume: " + "; ".join(verdict.reasons))
    else:
        # The cluster may have changed since the request: check again, exactly as before.
        verdict = preflight.check(
            run.cluster, run.action, run.params, exclude_run_id=run.id, client=client
        )
        if not verdict.ok:
            return _refuse(run, verdict.reasons)
    planned, added = stored[: len(verdict.steps)], stored[len(verdict.steps) :]
    if [s.name for s in planned] != verdict.steps:
        changed = "the cluster changed since the run was requested; request it again"
        return _end(run, "failed", changed) if run.resumed_count else _refuse(run, [changed])
    ctx = StepContext(
        client=client,
        heartbeat=lambda: heartbeat(run.id),
        cancel_requested=lambda: cancel_requested(run.id),
        cluster=run.cluster,
    )
    if added:  # the worker died while rolling back: finish the rollback, not the plan
        return rollback.resume(run, added, ctx, _do_step)
    for row, step in zip(planned, verdict.plan, strict=True):
        if row.status == "succeeded":
            continue  # done before the worker died; never repeated
        if cancel_requested(run.id):
            why = f"cancelled before step {row.position} ({row.name})"
            return rollback.after(run, planned, ctx, why, _do_step) or _cancelled(run, why)
        try:
            if blocked := _check_gates(run, row, step, ctx):
                why = f"step {row.position} ({row.name}) not started: {blocked}"
                return rollback.after(run, planned, ctx, why, _do_step) or _end(run, "failed", why)
            error = _run_step(run, row, step, ctx)
        except StepCancelled as cancelled:
            why = f"step {row.position} ({row.name}) {cancelled}"
            return rollback.after(run, planned, ctx, why, _do_step) or _cancelled(run, why)
        if error:
            why = f"step {row.position} ({row.name}) failed: {error}"
            return rollback.after(run, planned, ctx, why, _do_step) or _end(run, "failed", why)
    return _end(run, "succeeded", "")


def _do_step(run: RunbookRun, row: RunbookStep, step: Step, ctx: StepContext) -> str | None:
    """Check a step's gates (not cancellable) and run it: why it failed, or None."""
    return _check_gates(run, row, step, ctx, cancellable=False) or _run_step(run, row, step, ctx)


def _end(run: RunbookRun, status: str, error: str) -> str:
    end_run(run.id, status, error, actor=ACTOR, from_states=OURS)
    return status


def _cancelled(run: RunbookRun, error: str) -> str:
    end_run(run.id, "cancelled", error, actor=ACTOR, from_states=OURS, interrupted=error)
    return "cancelled"


def _refuse(run: RunbookRun, reasons: list[str]) -> str:
    journal.append("run.refused", actor=ACTOR, cluster=run.cluster, run_id=run.id, reasons=reasons)
    return _end(run, "refused", "refused at start: " + "; ".join(reasons))


def _check_gates(
    run: RunbookRun, row: RunbookStep, step: Step, ctx: StepContext, cancellable: bool = True
) -> str:
    """Check the step's gates on fresh views, for as long as the longest must hold;
    record their values as they go; why the step may not run, or ""."""
    if not step.gates:
        return ""
    hold_s = max(gate.hold_s for gate in step.gates)
    started = time.monotonic()
    while True:
        heartbeat(run.id)
        row.gates, failed = _gate_round(run, step, ctx, time.monotonic() - started)
        if failed or time.monotonic() - started >= hold_s:
            break
        row.save(update_fields=["gates"])  # shown live while the gates are held
        if cancellable and cancel_requested(run.id):
            raise StepCancelled("cancelled while holding its gates")
        time.sleep(conf.POLL_INTERVAL_S)
    fields = ["gates"]
    if failed:
        row.status, row.finished_at = "failed", timezone.now()
        row.detail = {"error": failed}
        fields += ["status", "finished_at", "detail"]
    heartbeat(run.id)
    row.save(update_fields=fields)
    if failed:
        journal_step("step.finished", run, row, actor=ACTOR)
    return failed


def _gate_round(
    run: RunbookRun, step: Step, ctx: StepContext, held_s: float
) -> tuple[list[dict[str, Any]], str]:
    """One check of every gate on one fresh view: (their records, why not or "")."""
    view = live.read_view(run.cluster, ctx.client)
    if view is None:
        reason = "no node of the cluster answered"
        return [
            {"name": g.name, "ok": False, "value": None, "reason": reason} for g in step.gates
        ], (f"gate failed: {reason}")
    checked = [(gate, gate.check(view, ctx)) for gate in step.gates]
    records = [
        {"name": gate.name, "ok": result.ok, "value": result.value, "reason": result.reason}
        | ({"heldS": round(min(held_s, gate.hold_s), 1)} if gate.hold_s else {})
        for gate, result in checked
    ]
    return records, "; ".join(f"gate failed: {r.reason}" for _, r in checked if not r.ok)


def _run_step(run: RunbookRun, row: RunbookStep, step: Step, ctx: StepContext) -> str | None:
    """Do one step, recording its start and end; the error message if it failed."""
    heartbeat(run.id)
    row.status, row.started_at, row.attempts = "running", timezone.now(), row.attempts + 1
    row.save(update_fields=["status", "started_at", "attempts"])
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
    alive = RunbookRun.objects.filter(id=run_id, status__in=OURS).update(
        heartbeat_at=timezone.now()
    )
    if not alive:
        raise RunAbandoned(run_id)


def cancel_requested(run_id: int) -> bool:
    return RunbookRun.objects.filter(id=run_id, status="cancelling").exists()
