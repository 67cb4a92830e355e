"""Asking for a runbook run, and keeping the record truthful when a worker dies.

`request_run` is what the buttons and the API call. A refused request still leaves a
RunbookRun row (status `refused`, `error` = the reasons) and a `run.refused` event, so
the operator sees why in the runs list and the audit log, not only in one response.
Dry runs leave no row: only a `run.requested` event with `dry_run=true` and the verdict.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from console.accounts.roles import has_role
from console.clusters.models import Cluster
from console.events import journal
from console.runbooks import conf, preflight
from console.runbooks.actions import ACTIONS
from console.runbooks.models import ACTIVE_RUN_STATES, RunbookRun, RunbookStep

log = logging.getLogger("console.runbooks")


class UnknownAction(ValueError):
    """Not a runbook action at all: a caller's mistake (400/422), not a refusal to record."""


@dataclass
class RunRequest:
    """What came of a request: the verdict, and the run row unless it was a dry run."""

    ok: bool
    dry_run: bool
    reasons: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    run: RunbookRun | None = None


def request_run(
    cluster: Cluster, action: str, params: Any, user: Any, dry_run: bool = False
) -> RunRequest:
    if not has_role(user, "operator"):
        raise PermissionDenied("running a runbook needs the operator role")
    if action not in ACTIONS:
        raise UnknownAction(f"unknown action {action[:40]!r}; choose one of {', '.join(ACTIONS)}")
    reap_stale_runs()  # a dead worker's run must not block this cluster
    params = params if params is not None else {}
    verdict = preflight.check(cluster, action, params)
    # Store what was cleaned; input that did not clean is not stored (it may not even
    # be storable, e.g. NUL characters in PostgreSQL), only the reasons are.
    params = verdict.params
    actor = user.get_username()
    if dry_run:
        journal.append(
            "run.requested",
            actor=actor,
            cluster=cluster,
            run_id=None,
            action=action,
            params=params,
            dry_run=True,
            ok=verdict.ok,
            reasons=verdict.reasons,
        )
        return RunRequest(verdict.ok, True, verdict.reasons, verdict.steps)
    if not verdict.ok:
        return _refuse(cluster, action, params, user, verdict.reasons)
    try:
        with transaction.atomic():
            run = _queue(cluster, action, params, user, verdict.steps)
    except IntegrityError:
        # Preflight saw no active run, but another request won the race: the partial
        # unique constraint decided. Name the winner.
        busy = preflight.active_run_reason(cluster) or "a run was already in progress"
        return _refuse(cluster, action, params, user, [busy])
    return RunRequest(True, False, [], verdict.steps, run)


def _queue(cluster: Cluster, action: str, params: dict, user: Any, steps: list[str]) -> RunbookRun:
    task_id = str(uuid.uuid4())
    run = RunbookRun.objects.create(
        cluster=cluster,
        action=action,
        params=params,
        status="queued",
        requested_by=user,
        task_id=task_id,
    )
    RunbookStep.objects.bulk_create(
        RunbookStep(run=run, position=i, name=name) for i, name in enumerate(steps, start=1)
    )
    journal.append(
        "run.requested",
        actor=user.get_username(),
        cluster=cluster,
        run_id=run.id,
        action=action,
        params=params,
        dry_run=False,
    )
    # Only after commit: a worker must never look for a row it cannot see yet.
    transaction.on_commit(lambda: _enqueue(run.id, task_id))
    return run


def _enqueue(run_id: int, task_id: str) -> None:
    from console.runbooks.tasks import run_runbook

    try:
        run_runbook.apply_async((run_id,), task_id=task_id, queue=conf.celery_queue())
    except Exception as err:  # a broker that is down must not leave the run queued forever
        log.exception("could not queue run #%s", run_id)
        finish_run(run_id, "failed", f"could not queue the run: {err}", from_states=("queued",))


def _refuse(
    cluster: Cluster, action: str, params: Any, user: Any, reasons: list[str]
) -> RunRequest:
    actor = user.get_username()
    with transaction.atomic():
        run = RunbookRun.objects.create(
            cluster=cluster,
            action=action[:32],
            params=params if isinstance(params, dict) else {},
            status="refused",
            requested_by=user,
            error="; ".join(reasons),
            finished_at=timezone.now(),
        )
        journal.append(
            "run.requested",
            actor=actor,
            cluster=cluster,
            run_id=run.id,
            action=action,
            params=run.params,
            dry_run=False,
        )
        journal.append("run.refused", actor=actor, cluster=cluster, run_id=run.id, reasons=reasons)
    return RunRequest(False, False, reasons, [], run)


def finish_run(
    run_id: int,
    status: str,
    error: str = "",
    *,
    actor: str = "worker",
    from_states: tuple[str, ...] = ACTIVE_RUN_STATES,
) -> bool:
    """End a run once: the conditional UPDATE makes a second ending (a reaper racing the
    worker) a no-op. Steps not yet started are marked skipped. True if this call ended it."""
    now = timezone.now()
    with transaction.atomic():
        ended = RunbookRun.objects.filter(id=run_id, status__in=from_states).update(
            status=status, finished_at=now, error=error
        )
        if not ended:
            return False
        RunbookStep.objects.filter(run_id=run_id, status="pending").update(status="skipped")
        run = RunbookRun.objects.select_related("cluster").get(id=run_id)
        journal.append(
            "run.finished",
            actor=actor,
            cluster=run.cluster,
            run_id=run_id,
            status=status,
            error=error,
        )
    return True


def reap_stale_runs(now: datetime | None = None) -> list[int]:
    """Mark runs whose worker went silent `stale`, and fail the step it was on.

    Safe to call from anywhere, as often as wanted (worker start, the collector's loop,
    page views): each run is claimed with a conditional UPDATE on the heartbeat it was
    read with, so a worker that is merely slow and heartbeats meanwhile keeps its run."""
    now = now or timezone.now()
    silent = now - timedelta(seconds=conf.stale_after_s())
    never_picked = now - timedelta(seconds=conf.queued_timeout_s())
    suspects = RunbookRun.objects.filter(
        Q(status="running", heartbeat_at__lt=silent)
        | Q(status="running", heartbeat_at__isnull=True, started_at__lt=silent)
        | Q(status="queued", created_at__lt=never_picked)
    ).values_list("id", "status", "heartbeat_at")
    reaped = []
    for run_id, status, heartbeat_at in suspects:
        if _reap(run_id, status, heartbeat_at, now):
            reaped.append(run_id)
    return reaped


def _reap(run_id: int, status: str, heartbeat_at: datetime | None, now: datetime) -> bool:
    if status == "queued":
        error = f"no worker started this run within {conf.queued_timeout_s()} s; is one running?"
    else:
        seen = f"{(now - heartbeat_at).total_seconds():.0f} s ago" if heartbeat_at else "never"
        error = (
            f"the worker stopped reporting (last heartbeat {seen}); what the interrupted "
            "step did on the cluster is unknown: check the nodes before running it again"
        )
    with transaction.atomic():
        claimed = RunbookRun.objects.filter(
            id=run_id, status=status, heartbeat_at=heartbeat_at
        ).update(status="stale", finished_at=now, error=error)
        if not claimed:
            return False
        run = RunbookRun.objects.select_related("cluster").get(id=run_id)
        for step in run.steps.filter(status="running"):
            step.status, step.finished_at = "failed", now
            step.detail = {**step.detail, "error": "the worker stopped reporting"}
            step.save(update_fields=["status", "finished_at", "detail"])
            journal_step("step.finished", run, step, actor="system")
        run.steps.filter(status="pending").update(status="skipped")
        journal.append(
            "run.finished",
            actor="system",
            cluster=run.cluster,
            run_id=run.id,
            status="stale",
            error=error,
        )
    log.warning("run #%s marked stale: %s", run_id, error)
    return True


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
    )


def recent_runs(cluster: Cluster, limit: int = 10) -> QuerySet[RunbookRun]:
    """What `_runs.html` shows: the newest runs with their steps and who asked."""
    return (
        RunbookRun.objects.filter(cluster=cluster)
        .select_related("requested_by", "cluster")
        .prefetch_related("steps")[:limit]
    )
