"""REST for backups, mounted by console/api.py at /api/backups.

GET / lists a cluster's backups with their verification (any role). POST / takes one
(operator), POST /{id}/verify verifies one (operator), POST /{id}/restore restores one
(admin, `confirm` = the cluster's name): each answers 202 with the queued run, or 409
with the reasons it was refused. GET /{id}/download streams the file (admin).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status

from console.accounts.auth import api_auth
from console.backups import services
from console.backups.models import Backup
from console.backups.storage import default_storage
from console.clusters.lookup import get_cluster
from console.core.roles import require_role
from console.runbooks.services import RunRequest
from daemon.backup import BackupError

router = Router(auth=api_auth, tags=["backups"])


class BackupOut(Schema):
    id: int
    cluster: str
    created_at: dt.datetime
    taken_by: str
    source_node: str
    size_bytes: int
    applied_index: int | None
    total_executions: int | None
    operations: int | None
    digest: str | None
    verification: str
    verified_at: dt.datetime | None
    verify_seconds: float | None
    verification_result: dict[str, Any]
    manifest: dict[str, Any]


class ClusterIn(Schema):
    cluster: str = Field(..., max_length=63, description="cluster name")


class RestoreIn(Schema):
    confirm: str = Field(..., max_length=63, description="the cluster's name, to confirm")


class Filters(Schema):
    cluster: str = Field(..., max_length=63, description="cluster name")
    limit: int = Field(50, ge=1, le=500)


class RunQueued(Schema):
    ok: bool
    reasons: list[str]
    steps: list[str]
    run_id: int | None


class Refusal(Schema):
    detail: str


ERRORS = {400: Refusal, 401: Refusal, 403: Refusal, 404: Refusal}
ASKED = {202: RunQueued, 409: RunQueued, **ERRORS}


@router.get("/", response={200: list[BackupOut], **ERRORS})
def list_backups(request: HttpRequest, filters: Query[Filters]) -> list[dict]:
    """A cluster's backups, newest first, with their verification."""
    cluster = get_cluster(filters.cluster)
    return [b.as_dict() for b in services.backups_of(cluster)[: filters.limit]]


@router.post("/", response=ASKED)
def take(request: HttpRequest, body: ClusterIn) -> Status[dict]:
    """Take a backup from a caught-up node, then verify it (operator)."""
    user = require_role(request, "operator")
    return _asked(services.take(get_cluster(body.cluster), user))


class ScheduleIO(Schema):
    enabled: bool = True
    interval_hours: int = Field(24, ge=1, le=24 * 30, description="take one this often")
    keep_last: int = Field(7, ge=1, le=1000, description="keep the newest N")
    keep_weekly: int = Field(4, ge=0, le=520, description="and one per week for M weeks")


@router.get("/schedule", response={200: ScheduleIO, **ERRORS})
def get_schedule(request: HttpRequest, cluster: str = Query(..., max_length=63)) -> dict:
    """A cluster's backup schedule and retention (any role)."""
    return _schedule_out(services.schedule_of(get_cluster(cluster)))


@router.put("/schedule", response={200: ScheduleIO, **ERRORS})
def set_schedule(
    request: HttpRequest, body: ScheduleIO, cluster: str = Query(..., max_length=63)
) -> dict:
    """Change a cluster's backup schedule and retention (admin). Journaled."""
    user = require_role(request, "admin")
    schedule = services.set_schedule(get_cluster(cluster), body.model_dump(), user)
    return _schedule_out(schedule)


def _schedule_out(schedule: Any) -> dict:
    return {key: getattr(schedule, key) for key in ScheduleIO.model_fields}


@router.get("/{backup_id}", response={200: BackupOut, **ERRORS})
def get_backup(request: HttpRequest, backup_id: int) -> dict:
    return _get(backup_id).as_dict()


@router.post("/{backup_id}/verify", response=ASKED)
def verify(request: HttpRequest, backup_id: int) -> Status[dict]:
    """Restore the backup into a scratch node and check it against its manifest (operator)."""
    user = require_role(request, "operator")
    return _asked(services.verify(_get(backup_id), user))


@router.post("/{backup_id}/restore", response=ASKED)
def restore(request: HttpRequest, backup_id: int, body: RestoreIn) -> Status[dict]:
    """Restore the cluster from this backup (admin): stops every node. Journaled per step."""
    user = require_role(request, "admin")
    try:
        return _asked(services.restore(_get(backup_id), body.confirm, user))
    except PermissionDenied as denied:
        raise HttpError(403, str(denied)) from None


@router.get("/{backup_id}/download", response={200: None, **ERRORS})
def download(request: HttpRequest, backup_id: int) -> FileResponse:
    """The backup file (admin)."""
    require_role(request, "admin")
    row = _get(backup_id)
    try:
        with default_storage().local_file(row.location) as path:
            handle = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
    except BackupError as exc:
        raise HttpError(404, str(exc)) from None
    return FileResponse(handle, as_attachment=True, filename=row.location)


def _get(backup_id: int) -> Backup:
    row = Backup.objects.select_related("cluster").filter(id=backup_id).first()
    if row is None:
        raise HttpError(404, f"no backup #{backup_id}")
    return row


def _asked(outcome: RunRequest) -> Status[dict]:
    body = {
        "ok": outcome.ok,
        "reasons": outcome.reasons,
        "steps": outcome.steps,
        "run_id": outcome.run.id if outcome.run else None,
    }
    return Status(202 if outcome.ok else 409, body)
