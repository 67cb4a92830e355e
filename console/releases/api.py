"""REST for releases, mounted by console/api.py at /api/releases.

GET "" lists releases (any role) with the nodes running each. Admins register (POST
/build from the working tree or a git ref; POST /upload with a wheel, size-limited),
retire and yank; operators ask for a verification (POST /{name}/verify: 202, the worker
does it). Refusals are 4xx with one line in `detail`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from ninja import Field, File, Router, Schema
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.responses import Status

from console.accounts.auth import api_auth
from console.clusters.models import Release
from console.core.roles import actor_of, require_role
from console.env import env_str
from console.events import journal
from console.releases import services, tasks

log = logging.getLogger("console.releases")
router = Router(auth=api_auth, tags=["releases"])


class ReleaseOut(Schema):
    name: str
    package_version: str
    sha256: str
    size_bytes: int
    source: str
    source_ref: str
    commit: str
    dirty: bool
    max_code_version: int | None
    status: str
    added_by: str | None
    added_at: dt.datetime
    verified_at: dt.datetime | None
    verification: dict[str, Any]
    nodes: list[str] = Field(..., description="cluster/node of every node running it")


class BuildIn(Schema):
    name: str | None = Field(None, max_length=63, description="release name (default: derived)")
    ref: str | None = Field(
        None, max_length=200, description="a git ref of this repository (default: working tree)"
    )


class ReasonIn(Schema):
    reason: str = Field("", max_length=500)


class Refusal(Schema):
    detail: str


ERRORS = {
    400: Refusal, 401: Refusal, 403: Refusal, 404: Refusal, 409: Refusal, 413: Refusal,
    503: Refusal,
}  # fmt: skip


def as_out(release: Release, running: dict[str, list[str]]) -> dict[str, Any]:
    return {
        **{f: getattr(release, f) for f in ReleaseOut.model_fields if hasattr(release, f)},
        "added_by": release.added_by.get_username() if release.added_by else None,
        "nodes": running.get(release.name, []),
    }


def _get(name: str) -> Release:
    release = Release.objects.filter(name=name[:63]).select_related("added_by").first()
    if release is None:
        raise HttpError(404, f"unknown release {name[:63]!r}")
    return release


@router.get("", response={200: list[ReleaseOut], **ERRORS})
def list_releases(request: HttpRequest) -> list[dict[str, Any]]:
    running = services.nodes_by_release()
    return [as_out(r, running) for r in Release.objects.select_related("added_by")]


@router.post("/build", response={201: ReleaseOut, **ERRORS})
def build(request: HttpRequest, body: BuildIn) -> Status[dict[str, Any]]:
    """Build a wheel of this checkout (its working tree, or `ref`) and register it (admin)."""
    user = require_role(request, "admin")
    try:
        release = services.build_from_checkout(settings.BASE_DIR, user, body.name, body.ref)
    except services.ReleaseError as exc:
        raise HttpError(409, str(exc)) from None
    return Status(201, as_out(release, {}))


@router.post("/upload", response={201: ReleaseOut, **ERRORS})
def upload(request: HttpRequest, wheel: File[UploadedFile]) -> Status[dict[str, Any]]:
    """Register an uploaded wheel of this project (admin; size-limited, hash recorded)."""
    user = require_role(request, "admin")
    if wheel.size and wheel.size > services.store.MAX_WHEEL_BYTES:
        raise HttpError(413, f"the upload is larger than {services.store.MAX_WHEEL_BYTES} bytes")
    try:
        release = services.register_upload(wheel.chunks(), wheel.name or "upload.whl", user)
    except services.ReleaseError as exc:
        raise HttpError(400, str(exc)) from None
    return Status(201, as_out(release, {}))


@router.post("/{name}/verify", response={202: ReleaseOut, **ERRORS})
def verify(request: HttpRequest, name: str) -> Status[dict[str, Any]]:
    """Ask the worker to verify the release (install, start a scratch node, check)."""
    require_role(request, "operator")
    release = _get(name)
    if release.status in (Release.Status.YANKED, Release.Status.RETIRED):
        raise HttpError(409, f"release {release.name} is {release.status}; it is not verified")
    if error := queue_verification(release, actor_of(request)):
        raise HttpError(503, error)
    return Status(202, as_out(release, services.nodes_by_release()))


def queue_verification(release: Release, actor: str) -> str | None:
    """Hand the verification to the worker; why it could not be queued, or None."""
    # The runbooks' queue: the worker that runs actions verifies releases too.
    queue = env_str("RUNBOOK_CELERY_QUEUE") or None
    try:
        tasks.verify_release.apply_async((release.id, actor), queue=queue)
    except Exception as err:  # a broker that is down: say so, do not crash the request
        log.warning("could not queue the verification of %s: %s", release.name, err)
        return f"could not queue the verification: {err}"
    with transaction.atomic():
        journal.append("release.verify_requested", actor=actor, release=release.name)
    return None


@router.post("/{name}/retire", response={200: ReleaseOut, **ERRORS})
def retire(request: HttpRequest, name: str, body: ReasonIn) -> dict[str, Any]:
    return _change(request, name, Release.Status.RETIRED, body.reason)


@router.post("/{name}/yank", response={200: ReleaseOut, **ERRORS})
def yank(request: HttpRequest, name: str, body: ReasonIn) -> dict[str, Any]:
    return _change(request, name, Release.Status.YANKED, body.reason)


def _change(request: HttpRequest, name: str, to: str, reason: str) -> dict[str, Any]:
    user = require_role(request, "admin")
    try:
        release = services.change_status(_get(name), to, user, reason)
    except services.ReleaseError as exc:
        raise HttpError(409, str(exc)) from None
    return as_out(release, services.nodes_by_release())
