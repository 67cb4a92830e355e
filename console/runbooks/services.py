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
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from console.clusters.models import Cluster
from console.core.roles import has_role
from console.events import journal
from console.runbooks import conf, preflight
from console.runbooks.actions import ACTIONS
from console.runbooks.models import RESUMABLE_RUN_STATES, RunbookRun, RunbookStep
from console.runbooks.records import end_run, reap_stale_runs
from console.runbooks.runner import PROMOTION
from console.runbooks.tasks import run_runbook

__all__ = [
    "abort_run", "cancel_run", "pause_run", "promote_run", "reap_stale_runs", "recent_runs",
    "request_run", "resume_run",
]  # fmt: skip
# Cancel and abort are one control; the journal keeps the word the operator used.
KIND = {"cancel": "run.cancel_requested", "abort": "run.abort_requested"}
PAST = {"cancel": "cancelled", "abort": "aborted"}

log = logging.getLogger("console.runbooks")


class UnknownAction(ValueError):
    """Not a runbook action at all: a caller's mistake (400/422), not a refusal to record."""


class NotNow(ValueError):
    """A control (cancel, abort, pause, resume, promote) asked of a run in a state that does not allow it (409)."""


@dataclass
class RunRequest:
    """What came of a request: the verdict, and the run row unless it was a dry run."""

    ok: bool
    dry_run: bool
    reasons: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    run: RunbookRun | None = None
    gates: list[list[str]] = field(default_factory=list)  # per step: the gates checked first


def request_run(
    cluster: Cluster, action: str, params: Any, user: Any, dry_run: bool = False
) -> RunRequest:
    _require_operator(user, "running a runbook")
    if action not in ACTIONS:
        raise UnknownAction(preflight.unknown_action_reason(action))
    reap_stale_runs()  # a dead worker's run must not block this cluster, collector or not
    params = params if params is not None else {}
    verdict = preflight.check(cluster, action, params)
    # Store what was cleaned; input that did not clean is not stored (it may not even
    # be storable, e.g. NUL characters in PostgreSQL), only the reasons are.
    params = verdict.params
    actor = user.get_username()
    ok, reasons = verdict.ok, list(verdict.reasons)
    denied = _authority_reasons(action, params, user)
    if denied:
        ok, reasons = False, [*reasons, *denied]
    if dry_run:
        journal.append(
            "run.requested",
            actor=actor,
            cluster=cluster,
            run_id=None,
            action=action,
            params=params,
            dry_run=True,
            ok=ok,
            reasons=reasons,
        )
        return RunRequest(ok, True, reasons, verdict.steps, None, _gates(verdict))
    if not ok:
        return _refuse(cluster, action, params, user, reasons)
    try:
        with transaction.atomic():
            run = _queue(cluster, action, params, user, verdict.steps)
    except IntegrityError:
        # Preflight saw no active run, but another request won the race: the partial
        # unique constraint decided. Name the winner.
        busy = preflight.active_run_reason(cluster) or "a run was already in progress"
        return _refuse(cluster, action, params, user, [busy])
    return RunRequest(True, False, [], verdict.steps, run, _gates(verdict))


def _gates(verdict: preflight.Verdict) -> list[list[str]]:
    return [[gate.name for gate in step.gates] for step in verdict.plan]


def _queue(cluster: Cluster, action: str, params: dict, user: Any, steps: list[str]) -> RunbookRun:
    task_id = str(uuid.uuid4())
    run = RunbookRun.objects.create(
        cluster=cluster,
        action=action,
        params=params,
        status="queued",
        requested_by=user,
        task_id=task_id,
        queued_at=timezone.now(),
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
    try:
        run_runbook.apply_async((run_id,), task_id=task_id, queue=conf.celery_queue())
    except Exception as err:  # a broker that is down must not leave the run queued forever
        log.exception("could not queue run #%s", run_id)
        end_run(run_id, "failed", f"could not queue the run: {err}", from_states=("queued",))


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


def cancel_run(run_id: int, user: Any, verb: str = "cancel") -> RunbookRun:
    """Cancel (or abort: the same thing) a run.

    A queued run that never started ends `cancelled` now. A running (or pausing) one
    becomes `cancelling`: its worker stops before the next step (or while a step waits)
    and rolls back what the run changed, when its action knows how (an upgrade does).
    A paused run, or a resumed one still queued, has no worker on it: it is queued to
    roll back (`abort_requested`), never simply dropped with nodes half-moved."""
    _require_operator(user, f"{verb}ing a run" if verb == "abort" else "cancelling a run")
    actor = user.get_username()
    fresh = Q(status="queued", resumed_count=0)
    if end_run(run_id, "cancelled", f"{PAST[verb]} by {actor} before it started", actor=actor,
               from_states=("queued",), only_if=fresh):  # fmt: skip
        if verb == "abort":  # a cancel of a queued run was never journaled; keep it so
            _journal_control(verb, _run(run_id), actor, "queued")
        return _run(run_id)
    run = _run(run_id)
    with transaction.atomic():
        asked = RunbookRun.objects.filter(id=run_id, status__in=("running", "pausing")).update(
            status="cancelling", cancel_requested_by=user
        ) or RunbookRun.objects.filter(id=run_id, status="queued").update(
            abort_requested=True, cancel_requested_by=user
        )
        if asked:
            _journal_control(verb, run, actor, run.status)
    if asked:
        return _run(run_id)
    if run.status == "paused":
        _requeue(run, user, ("paused",), KIND[verb], "aborted", abort_requested=True,
                 cancel_requested_by=user)  # fmt: skip
        return _run(run_id)
    raise NotNow(
        f"run #{run_id} is {run.status}; only a queued or running run (or a paused one) "
        f"can be {PAST[verb]}"
    )


def _journal_control(verb: str, run: RunbookRun, actor: str, previous: str) -> None:
    extra = {"previous": previous} if verb == "abort" else {}
    journal.append(KIND[verb], actor=actor, cluster=run.cluster, run_id=run.id, **extra)


def abort_run(run_id: int, user: Any) -> RunbookRun:
    """Abort: the documented alias of cancel. For an upgrade (any action with a rollback)
    the worker puts every node it touched back on its previous release."""
    return cancel_run(run_id, user, verb="abort")


def pause_run(run_id: int, user: Any) -> RunbookRun:
    """Pause a running run: its worker finishes the current step, then leaves the run
    `paused` (still holding the cluster). Not while it rolls back: that must finish."""
    _require_operator(user, "pausing a run")
    actor = user.get_username()
    run = _run(run_id)
    if run.status == "running" and run.error.startswith("rolling back"):
        raise NotNow(f"run #{run_id} is rolling back; a rollback is not paused")
    with transaction.atomic():
        asked = (
            RunbookRun.objects.filter(id=run_id, status="running")
            .exclude(error__startswith="rolling back")
            .update(status="pausing", hold_reason=f"paused by {actor}")
        )
        if asked:
            journal.append("run.pause_requested", actor=actor, cluster=run.cluster, run_id=run_id)
    if not asked:
        raise NotNow(f"run #{run_id} is {run.status}; only a running run can be paused")
    return _run(run_id)


def promote_run(run_id: int, user: Any) -> RunbookRun:
    """Approve the point of no return a paused run waits at (an upgrade's code-version
    switch): it is queued again and goes on from that step."""
    _require_operator(user, "promoting a run")
    run = _run(run_id)
    if run.status != "paused" or not run.hold_reason.startswith(PROMOTION):
        waits = f" ({run.hold_reason})" if run.hold_reason else ""
        raise NotNow(
            f"run #{run_id} is {run.status}{waits}; only a run paused {PROMOTION} can be promoted"
        )
    now = timezone.now()
    _requeue(run, user, ("paused",), "run.promoted", "promoted", promoted_by=user,
             promoted_at=now)  # fmt: skip
    return _run(run_id)


def resume_run(run_id: int, user: Any) -> RunbookRun:
    """Go on with a run: a `pausing` one simply keeps running; a `paused`, `stale` or
    `failed` one is queued again, and its worker starts at the first step that did not
    succeed, checking that step's gates first; finished steps are not repeated. A run
    paused awaiting promotion is promoted, not resumed."""
    _require_operator(user, "resuming a run")
    run = _run(run_id)
    if run.action in ACTIONS:
        denied = _authority_reasons(run.action, run.params, user)
        if denied:
            # Resuming runs the remaining steps: the same authority as starting them.
            raise PermissionDenied(f"resuming run #{run_id}: {'; '.join(denied)}")
    actor = user.get_username()
    with transaction.atomic():
        if RunbookRun.objects.filter(id=run_id, status="pausing").update(
            status="running", hold_reason=""
        ):
            journal.append("run.resumed", actor=actor, cluster=run.cluster, run_id=run_id,
                           previous="pausing")  # fmt: skip
            return _run(run_id)
    if run.status == "paused" and run.hold_reason.startswith(PROMOTION):
        raise NotNow(
            f"run #{run_id} is {run.hold_reason}; promote it to go on past that step, "
            "or abort it to roll back"
        )
    _requeue(run, user, (*RESUMABLE_RUN_STATES, "paused"), "run.resumed", "resumed")
    return _run(run_id)


def _requeue(
    run: RunbookRun,
    user: Any,
    from_states: tuple[str, ...],
    kind: str,
    done: str,
    **changes: Any,
) -> None:
    """Queue `run` again from `from_states` (NotNow otherwise, saying it cannot be
    `done`), journaled as `kind`."""
    task_id = str(uuid.uuid4())
    try:
        with transaction.atomic():
            requeued = RunbookRun.objects.filter(id=run.id, status__in=from_states).update(
                status="queued", queued_at=timezone.now(), finished_at=None, heartbeat_at=None,
                error="", hold_reason="", task_id=task_id,
                resumed_count=F("resumed_count") + 1, **changes,
            )  # fmt: skip
            if not requeued:
                *some, last = [s for s in from_states if s != "paused"] or ["paused"]
                states = f"{' or '.join(filter(None, [', '.join(some), last]))}"
                also = (
                    " (or a paused one)" if "paused" in from_states and states != "paused" else ""
                )
                raise NotNow(
                    f"run #{run.id} is {run.status}; only a {states} run can be {done}{also}"
                )
            run.steps.exclude(status="succeeded").update(
                status="pending", started_at=None, finished_at=None
            )
            journal.append(
                kind, actor=user.get_username(), cluster=run.cluster, run_id=run.id,
                previous=run.status,
            )  # fmt: skip
            transaction.on_commit(lambda: _enqueue(run.id, task_id))
    except IntegrityError:
        busy = preflight.active_run_reason(run.cluster) or "another run is in progress"
        raise NotNow(f"run #{run.id} cannot be {done} now: {busy}") from None


def _authority_reasons(action: str, params: Any, user: Any) -> list[str]:
    if not isinstance(params, dict):
        return []  # params that did not clean are refused with their own reasons
    return ACTIONS[action].authority_reasons(params, has_role(user, "admin"))


def _require_operator(user: Any, what: str) -> None:
    if not has_role(user, "operator"):
        raise PermissionDenied(f"{what} needs the operator role")


def _run(run_id: int) -> RunbookRun:
    return RunbookRun.objects.select_related("cluster", "requested_by").get(id=run_id)


def recent_runs(cluster: Cluster, limit: int = 10) -> QuerySet[RunbookRun]:
    """What `_runs.html` shows: the newest runs with their steps and who asked."""
    return (
        RunbookRun.objects.filter(cluster=cluster)
        .select_related("requested_by", "cluster")
        .prefetch_related("steps")[:limit]
    )
