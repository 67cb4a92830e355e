"""Ending runs: `end_run` is the only code that gives a run its final status.

The worker (success, failure, refusal at start, cancel), the cancel request (a queued
run), the reaper (a silent worker) and a broker that is down all end runs through it,
so every ending is conditional (a second ending is a no-op), marks the steps the same
way and journals the same events.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from console.events import journal
from console.runbooks import conf
from console.runbooks.models import ACTIVE_RUN_STATES, RunbookRun, RunbookStep

log = logging.getLogger("console.runbooks")


def end_run(
    run_id: int,
    status: str,
    error: str = "",
    *,
    actor: str = "worker",
    from_states: tuple[str, ...] = ACTIVE_RUN_STATES,
    only_if: Q | None = None,
    interrupted: str = "",
) -> bool:
    """Give run `run_id` its final `status`, if it is still in one of `from_states` (and
    matches `only_if`). A step still `running` is marked failed with `interrupted` as
    the reason; steps not started are marked skipped. True if this call ended the run."""
    now = timezone.now()
    with transaction.atomic():
        claim = RunbookRun.objects.filter(id=run_id, status__in=from_states)
        if only_if is not None:
            claim = claim.filter(only_if)
        if not claim.update(status=status, finished_at=now, error=error):
            return False
        run = RunbookRun.objects.select_related("cluster").get(id=run_id)
        for step in run.steps.filter(status="running"):
            step.status, step.finished_at = "failed", now
            step.detail = {**step.detail, "error": interrupted or "the run ended during this step"}
            step.save(update_fields=["status", "finished_at", "detail"])
            journal_step("step.finished", run, step, actor=actor)
        run.steps.filter(status="pending").update(status="skipped")
        journal.append(
            "run.finished", actor=actor, cluster=run.cluster, run_id=run_id, status=status,
            error=error,
        )  # fmt: skip
    return True


def reap_stale_runs(now: datetime | None = None) -> list[int]:
    """End the runs whose worker went silent, and fail the step it was on.

    The collector calls this every tick, a worker at its start, a new request before
    its preflight. A `running` or `pausing` run becomes `stale` (resumable); a
    `cancelling` one becomes `cancelled`, as the operator asked. A `paused` run has no
    worker to wait for and is never reaped. Each run is claimed on the heartbeat it
    was read with, so a worker that is merely slow and heartbeats meanwhile keeps it."""
    now = now or timezone.now()
    silent = now - timedelta(seconds=conf.stale_after_s())
    never_picked = now - timedelta(seconds=conf.queued_timeout_s())
    working = Q(status__in=("running", "cancelling", "pausing"))
    suspects = RunbookRun.objects.filter(
        (working & Q(heartbeat_at__lt=silent))
        | (working & Q(heartbeat_at__isnull=True, started_at__lt=silent))
        | Q(status="queued", queued_at__lt=never_picked)
        | Q(status="queued", queued_at__isnull=True, created_at__lt=never_picked)
    ).values_list("id", "status", "heartbeat_at")
    return [
        run_id
        for run_id, status, heartbeat_at in suspects
        if _reap(run_id, status, heartbeat_at, now)
    ]


def _reap(run_id: int, status: str, heartbeat_at: datetime | None, now: datetime) -> bool:
    final = "cancelled" if status == "cancelling" else "stale"
    if status == "queued":
        error = f"no worker started this run within {conf.queued_timeout_s()} s; is one running?"
    else:
        seen = f"{(now - heartbeat_at).total_seconds():.0f} s ago" if heartbeat_at else "never"
        error = (
            f"the worker stopped reporting (last heartbeat {seen}); what the interrupted "
            "step did on the cluster is unknown: check the nodes"
            + (", then resume the run or request it again" if final == "stale" else "")
        )
    ended = end_run(
        run_id, final, error, actor="system", from_states=(status,),
        only_if=Q(heartbeat_at=heartbeat_at) if heartbeat_at else Q(heartbeat_at__isnull=True),
        interrupted="the worker stopped reporting",
    )  # fmt: skip
    if ended:
        log.warning("run #%s marked %s: %s", run_id, final, error)
    return ended


def journal_step(kind: str, run: RunbookRun, step: RunbookStep, *, actor: str) -> None:
    journal.append(
        kind,
        actor=actor,
        cluster=run.cluster,
        run_id=run.id,
        position=step.position,
        name=step.name,
        status=step.status,
        detail=step.detail,
        gates=step.gates,
    )
