"""Carry out one run, step by step, leaving a truthful record at every point.

Called by the Celery task; a plain function so the logic reads without Celery. The run
row is claimed with a conditional UPDATE (queued -> running), so a redelivered or
duplicated task message can never start it twice. Every database write after that is
conditional on the run still being ours (`running` or `cancelling`): if the reaper
declared it stale while this worker was frozen, the worker stops instead of
overwriting the verdict.

Before each step: the operator's cancel (or abort) is honoured, then the run's progress
deadline, then a pause: the operator's, or the one a step that awaits promotion asks for
until someone promotes the run (the worker then leaves the run `paused` and returns; a
resume or promote queues it again). Then the step's gates are checked on a fresh view of
the cluster, and their values recorded on the step. A resumed run skips the steps that
already succeeded.

The progress deadline (the param `progressDeadlineS`, when the action has one) counts
from when this worker claimed the run, so time spent paused does not count; passing it
rolls the run back like a failed gate, with that reason. A step that waits notices it
too (through the context's cancel check), so a slow step cannot outlive it for long.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db.models import Case, Value, When
from django.utils import timezone

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.events import journal
from console.runbooks import conf, live, preflight, rollback
from console.runbooks.actions.base import Step, StepCancelled, StepContext, StepFailed
from console.runbooks.models import RunbookRun, RunbookStep
from console.runbooks.records import end_run, journal_step

log = logging.getLogger("console.runbooks")
ACTOR = "worker"
OURS = ("running", "cancelling", "pausing")
PROMOTION = "awaiting promotion"


class RunAbandoned(Exception):
    """The run is no longer ours (it was reaped as stale); stop without writing."""


def execute(run_id: int, client: DaemonClient | None = None) -> str | None:
    """Run `run_id` if it is still queued; return its final status (None if not ours)."""
    now = timezone.now()
    # An aborted paused run is queued only to roll back: it starts out `cancelling`.
    claimed = RunbookRun.objects.filter(id=run_id, status="queued").update(
        status=Case(When(abort_requested=True, then=Value("cancelling")), default=Value("running")),
        started_at=now, heartbeat_at=now, hold_reason="",
    )  # fmt: skip
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
    deadline = Deadline.of(run)
    ctx = StepContext(
        client=client,
        heartbeat=lambda: heartbeat(run.id),
        # A waiting step stops for a cancel, and for the run's deadline.
        cancel_requested=lambda: cancel_requested(run.id) or deadline.passed(),
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
        if deadline.passed():
            why = f"{deadline.reason()} before step {row.position} ({row.name})"
            return rollback.after(run, planned, ctx, why, _do_step) or _end(run, "failed", why)
        if (hold := _hold_reason(run, row, step)) and _pause(run, row, hold):
            return "paused"
        if hold:  # the pause lost a race with a cancel: honour the cancel
            why = f"cancelled before step {row.position} ({row.name})"
            return rollback.after(run, planned, ctx, why, _do_step) or _cancelled(run, why)
        try:
            if blocked := _check_gates(run, row, step, ctx):
                why = f"step {row.position} ({row.name}) not started: {blocked}"
                return rollback.after(run, planned, ctx, why, _do_step) or _end(run, "failed", why)
            error = _run_step(run, row, step, ctx)
        except StepCancelled as cancelled:
            if deadline.passed() and not cancel_requested(run.id):
                why = f"{deadline.reason()} during step {row.position} ({row.name})"
                return rollback.after(run, planned, ctx, why, _do_step) or _end(run, "failed", why)
            why = f"step {row.position} ({row.name}) {cancelled}"
            return rollback.after(run, planned, ctx, why, _do_step) or _cancelled(run, why)
        if error:
            why = f"step {row.position} ({row.name}) failed: {error}"
            return rollback.after(run, planned, ctx, why, _do_step) or _end(run, "failed", why)
    return _end(run, "succeeded", "")


class Deadline:
    """The run's progress deadline, counted from when this worker claimed it."""

    def __init__(self, limit_s: float | None) -> None:
        self.limit_s, self.started = limit_s, time.monotonic()

    @classmethod
    def of(cls, run: RunbookRun) -> Deadline:
        limit = run.params.get("progressDeadlineS") if isinstance(run.params, dict) else None
        return cls(float(limit) if isinstance(limit, int | float) and limit > 0 else None)

    def passed(self) -> bool:
        return self.limit_s is not None and time.monotonic() - self.started > self.limit_s

    def reason(self) -> str:
        return f"the progress deadline ({self.limit_s:.0f} s) passed"


def _hold_reason(run: RunbookRun, row: RunbookStep, step: Step) -> str:
    """Why the run must pause before `row`, or "": the operator asked, or the step waits
    for a promotion nobody gave yet."""
    if RunbookRun.objects.filter(id=run.id, status="pausing").exists():
        who = RunbookRun.objects.filter(id=run.id).values_list("hold_reason", flat=True).first()
        return f"{who or 'paused'} before step {row.position} ({row.name})"
    if getattr(step, "awaits_promotion", False) and run.promoted_at is None:
        return f"{PROMOTION}: step {row.position} ({row.name}) is the point of no return"
    return ""


def _pause(run: RunbookRun, row: RunbookStep, reason: str) -> bool:
    """Leave the run `paused` before `row` (it keeps the cluster); False if a cancel came
    first."""
    paused = RunbookRun.objects.filter(id=run.id, status__in=("running", "pausing")).update(
        status="paused", hold_reason=reason[:300], heartbeat_at=timezone.now()
    )
    if paused:
        journal.append(
            "run.paused", actor=ACTOR, cluster=run.cluster, run_id=run.id, reason=reason,
            position=row.position,
        )  # fmt: skip
    return bool(paused)


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
    """Check the step's gates on fresh views until all have held true together for as
    long as the longest must hold; record their values as they go; why the step may not
    run, or "". A failure ends it only once it has lasted conf.gate_grace_s() without a
    break; a soak interrupted by a shorter one holds again from its end."""
    if not step.gates:
        return ""
    hold_s = max(gate.hold_s for gate in step.gates)
    grace_s = conf.gate_grace_s()
    held_since = time.monotonic()
    failing_since: float | None = None
    while True:
        heartbeat(run.id)
        now = time.monotonic()
        row.gates, failed = _gate_round(run, step, ctx, now - held_since)
        if failed:
            failing_since = now if failing_since is None else failing_since
            if now - failing_since >= grace_s:
                break
        elif failing_since is not None:
            failing_since, held_since = None, now
        if not failed and now - held_since >= hold_s:
            break
        row.save(update_fields=["gates"])  # shown live while the gates are held
        if cancellable and ctx.cancel_requested():
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
