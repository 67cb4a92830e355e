"""REST for runbook runs, mounted by console/api.py at /api/runbooks.

POST /runs asks for a run (operator): 200 with the verdict for a dry run, 202 with the
queued run, 409 with the reasons (and the refused run's record) when preflight says no,
422 naming the field when the params do not fit the action's schema.
POST /runs/{id}/cancel|abort|pause|resume|promote (operator): 200 with the run, 409
with the reason if its state does not allow it. `abort` is the documented alias of
`cancel` (an upgrade's cancel already rolls back what it touched).
GET /runs and GET /runs/{id} read runs with their steps and gate values (any role).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status
from pydantic import ValidationInfo, field_validator

from console.accounts.auth import api_auth
from console.clusters.lookup import get_cluster
from console.core.roles import require_role
from console.runbooks import services
from console.runbooks.actions import ACTIONS
from console.runbooks.actions.blue_green import BlueGreenParams
from console.runbooks.actions.drain import NodeParams
from console.runbooks.actions.node_lifecycle import RestartParams, StopStartParams
from console.runbooks.actions.quick_rollback import RollbackParams
from console.runbooks.actions.scale import ScaleParams
from console.runbooks.actions.snapshot import SnapshotParams
from console.runbooks.actions.transfer_leader import TargetParams
from console.runbooks.actions.upgrade import UpgradeParams
from console.runbooks.models import RunbookRun
from console.runbooks.progress_schema import ProgressOut, progress_out

router = Router(auth=api_auth, tags=["runbooks"])

Action = Literal[
    "snapshot",
    "drain",
    "undrain",
    "transfer_leader",
    "restart_node",
    "stop_node",
    "start_node",
    "scale",
    "upgrade",
    "rollback",
    "blue_green",
]
RunStatus = Literal[
    "queued", "running", "cancelling", "pausing", "paused", "succeeded", "failed", "stale", "refused", "cancelled",
    "rolled_back", "needs_operator",
]  # fmt: skip


class RunIn(Schema):
    cluster: str = Field(..., max_length=63, description="cluster name")
    action: Action
    params: (
        SnapshotParams
        | NodeParams
        | TargetParams
        | RestartParams
        | StopStartParams
        | ScaleParams
        | UpgradeParams
        | RollbackParams
        | BlueGreenParams
    ) = Field(
        default_factory=dict,
        validate_default=True,
        description="the action's parameters: snapshot takes SnapshotParams, drain and "
        "undrain NodeParams, transfer_leader TargetParams, restart_node RestartParams, "
        "stop_node and start_node StopStartParams, scale ScaleParams, upgrade UpgradeParams, rollback RollbackParams, "
        "blue_green BlueGreenParams",
    )
    dry_run: bool = Field(
        False, description="preflight only: say what would happen, change nothing"
    )

    @field_validator("params", mode="before")
    @classmethod
    def _params_of_the_action(cls, value: Any, info: ValidationInfo) -> Any:
        # The union alone would take drain's params for transfer_leader; parse them with
        # the schema of the action named (validated first), so the 422 names the field.
        action = info.data.get("action")
        if action not in ACTIONS:
            return value
        params, reasons = ACTIONS[action].parse(value if value is not None else {})
        if params is None:
            raise ValueError("; ".join(reasons))
        return params


class GateOut(Schema):
    name: str
    ok: bool
    value: Any = Field(None, description="what the gate measured when it was last checked")
    reason: str = ""


class StepOut(Schema):
    position: int
    name: str
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    detail: dict[str, Any]
    gates: list[GateOut]
    attempts: int


class RunOut(Schema):
    id: int
    cluster: str
    action: str
    params: dict[str, Any]
    status: str
    requested_by: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    error: str
    resumed_count: int
    hold_reason: str = Field(
        description="why a paused run waits: 'paused by <who> before step N (...)', or "
        "'awaiting promotion: ...' before an upgrade's code-version switch"
    )
    awaiting_promotion: bool
    promoted_by: str | None
    promoted_at: dt.datetime | None
    steps: list[StepOut]
    progress: ProgressOut = Field(description="per node: its step, state and releases; gates")


class RequestOut(Schema):
    ok: bool
    dry_run: bool
    reasons: list[str]
    steps: list[str]
    gates: list[list[str]] = Field(
        description="per step, the gates checked again just before it runs"
    )
    run: RunOut | None


class RunFilters(Schema):
    cluster: str | None = Field(None, max_length=63, description="cluster name")
    status: RunStatus | None = None
    limit: int = Field(50, ge=1, le=200)


class Refusal(Schema):
    detail: str


ERRORS = {400: Refusal, 401: Refusal, 403: Refusal, 404: Refusal}
CONTROL_ERRORS = {**ERRORS, 409: Refusal}


@router.post("/runs", response={200: RequestOut, 202: RequestOut, 409: RequestOut, **ERRORS})
def request_run(request: HttpRequest, body: RunIn) -> Status[dict]:
    """Ask for a runbook run (operator). Journaled as run.requested (and run.refused)."""
    user = require_role(request, "operator")
    cluster = get_cluster(body.cluster)
    params = body.params.model_dump(mode="json")
    try:
        outcome = services.request_run(cluster, body.action, params, user, body.dry_run)
    except PermissionDenied as denied:
        raise HttpError(403, str(denied)) from None
    status = 200 if outcome.dry_run else (202 if outcome.ok else 409)
    run = run_out(_runs().get(id=outcome.run.id)) if outcome.run else None
    return Status(
        status,
        {
            "ok": outcome.ok,
            "dry_run": outcome.dry_run,
            "reasons": outcome.reasons,
            "steps": outcome.steps,
            "gates": outcome.gates,
            "run": run,
        },
    )


@router.get("/runs", response={200: list[RunOut], **ERRORS})
def list_runs(request: HttpRequest, filters: Query[RunFilters]) -> list[dict]:
    """Runs, newest first, with their steps; filter by cluster and status."""
    runs = _runs()
    if filters.cluster is not None:
        runs = runs.filter(cluster=get_cluster(filters.cluster))
    if filters.status is not None:
        runs = runs.filter(status=filters.status)
    return [run_out(run) for run in runs.order_by("-id")[: filters.limit]]


@router.get("/runs/{run_id}", response={200: RunOut, **ERRORS})
def get_run(request: HttpRequest, run_id: int) -> dict:
    return run_out(_get(run_id))


@router.post("/runs/{run_id}/cancel", response={200: RunOut, **CONTROL_ERRORS})
def cancel_run(request: HttpRequest, run_id: int) -> dict:
    """Cancel a run (operator): a queued run ends `cancelled` at once; a running one
    goes `cancelling` and its worker stops before the next step."""
    return _control(request, run_id, services.cancel_run)


@router.post("/runs/{run_id}/abort", response={200: RunOut, **CONTROL_ERRORS})
def abort_run(request: HttpRequest, run_id: int) -> dict:
    """Abort a run (operator): the alias of cancel, also for a paused run. An upgrade
    then rolls every node it touched back to its previous release (`rolled_back`)."""
    return _control(request, run_id, services.abort_run)


@router.post("/runs/{run_id}/pause", response={200: RunOut, **CONTROL_ERRORS})
def pause_run(request: HttpRequest, run_id: int) -> dict:
    """Pause a running run (operator): it goes `pausing`, its worker finishes the current
    step and leaves it `paused`, still holding the cluster. Not while it rolls back."""
    return _control(request, run_id, services.pause_run)


@router.post("/runs/{run_id}/resume", response={200: RunOut, **CONTROL_ERRORS})
def resume_run(request: HttpRequest, run_id: int) -> dict:
    """Go on with a `pausing`, `paused`, `stale` or `failed` run (operator): it starts at
    the first step that did not succeed, after checking that step's gates; finished steps
    are not repeated. A run awaiting promotion needs `promote` instead (409)."""
    return _control(request, run_id, services.resume_run)


@router.post("/runs/{run_id}/promote", response={200: RunOut, **CONTROL_ERRORS})
def promote_run(request: HttpRequest, run_id: int) -> dict:
    """Approve the point of no return a run is paused at, awaiting promotion (operator):
    an upgrade's code-version switch. It is queued again and goes on from there."""
    return _control(request, run_id, services.promote_run)


def _control(request: HttpRequest, run_id: int, verb: Any) -> dict:
    user = require_role(request, "operator")
    _get(run_id)
    try:
        verb(run_id, user)
    except services.NotNow as err:
        raise HttpError(409, str(err)) from None
    return run_out(_get(run_id))


def _get(run_id: int) -> RunbookRun:
    run = _runs().filter(id=run_id).first()
    if run is None:
        raise HttpError(404, f"no run #{run_id}")
    return run


def run_out(run: RunbookRun) -> dict:
    return {
        "id": run.id,
        "cluster": run.cluster.name,
        "action": run.action,
        "params": run.params,
        "status": run.status,
        "requested_by": run.requested_by.get_username() if run.requested_by else None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "heartbeat_at": run.heartbeat_at,
        "error": run.error,
        "resumed_count": run.resumed_count,
        "hold_reason": run.hold_reason,
        "awaiting_promotion": run.status == "paused"
        and run.hold_reason.startswith(services.PROMOTION),
        "promoted_by": run.promoted_by.get_username() if run.promoted_by else None,
        "promoted_at": run.promoted_at,
        "steps": [
            {
                "position": step.position,
                "name": step.name,
                "status": step.status,
                "started_at": step.started_at,
                "finished_at": step.finished_at,
                "detail": step.detail,
                "gates": step.gates,
                "attempts": step.attempts,
            }
            for step in run.steps.all()
        ],
        "progress": progress_out(run),
    }


def _runs():
    return RunbookRun.objects.select_related(
        "cluster", "requested_by", "promoted_by"
    ).prefetch_related("steps")
