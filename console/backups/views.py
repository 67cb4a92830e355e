"""The backups page of a cluster: the list with verification, and its buttons."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.backups import services
from console.backups.models import Backup
from console.backups.storage import default_storage
from console.clusters.models import Cluster
from console.core.roles import has_role
from console.runbooks.services import RunRequest
from daemon.backup import BackupError


@login_required
@require_GET
def backup_list(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    context = {
        "cluster": cluster,
        "backups": services.backups_of(cluster)[:100],
        "schedule": services.schedule_of(cluster),
        "can_operate": has_role(request.user, "operator"),
        "is_admin": has_role(request.user, "admin"),
    }
    return render(request, "backups/list.html", context)


@login_required
@require_GET
def backup_rows(request: HttpRequest, name: str) -> HttpResponse:
    """The table alone: the page polls it while a backup is being taken or verified."""
    cluster = get_object_or_404(Cluster, name=name)
    context = {
        "cluster": cluster,
        "backups": services.backups_of(cluster)[:100],
        "can_operate": has_role(request.user, "operator"),
        "is_admin": has_role(request.user, "admin"),
    }
    return render(request, "backups/_rows.html", context)


@login_required
@require_POST
def take(request: HttpRequest, name: str) -> HttpResponse:
    _require(request, "operator", "taking a backup")
    cluster = get_object_or_404(Cluster, name=name)
    return _outcome(request, cluster.name, "backup", services.take(cluster, request.user))


@login_required
@require_POST
def verify(request: HttpRequest, backup_id: int) -> HttpResponse:
    _require(request, "operator", "verifying a backup")
    row = get_object_or_404(Backup, id=backup_id)
    return _outcome(request, row.cluster.name, "verify", services.verify(row, request.user))


@login_required
@require_POST
def restore(request: HttpRequest, backup_id: int) -> HttpResponse:
    _require(request, "admin", "restoring a backup")
    row = get_object_or_404(Backup, id=backup_id)
    confirm = request.POST.get("confirm", "")[:63]
    return _outcome(
        request, row.cluster.name, "restore", services.restore(row, confirm, request.user)
    )


@login_required
@require_GET
def download(request: HttpRequest, backup_id: int) -> HttpResponse:
    _require(request, "admin", "downloading a backup")
    row = get_object_or_404(Backup, id=backup_id)
    try:
        with default_storage().local_file(row.location) as path:
            handle = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
    except BackupError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("cluster-backups", args=[row.cluster.name]))
    return FileResponse(handle, as_attachment=True, filename=row.location)


def _require(request: HttpRequest, role: str, what: str) -> None:
    if not has_role(request.user, role):
        raise PermissionDenied(f"{what} needs the {role} role")


def _outcome(request: HttpRequest, name: str, what: str, outcome: RunRequest) -> HttpResponse:
    if outcome.ok and outcome.run is not None:
        messages.info(request, f"{what}: run #{outcome.run.id} queued")
    else:
        messages.error(request, f"{what} refused: {'; '.join(outcome.reasons)}")
    return HttpResponseRedirect(reverse("cluster-backups", args=[name]))
