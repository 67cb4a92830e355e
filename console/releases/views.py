"""The releases page and its forms (build, upload, verify, retire, yank). Thin: the
rules are in `services`, verification in the worker (`tasks`)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.clusters.models import Release
from console.core.roles import has_role
from console.releases import services
from console.releases.api import queue_verification


@login_required
@require_GET
def releases_page(request: HttpRequest) -> HttpResponse:
    running = services.nodes_by_release()
    releases = [(release, running.get(release.name, [])) for release in Release.objects.all()]
    context = {
        "releases": releases,
        "is_admin": has_role(request.user, "admin"),
        "is_operator": has_role(request.user, "operator"),
        "max_upload_mb": services.store.MAX_WHEEL_BYTES // (1024 * 1024),
    }
    return render(request, "releases/list.html", context)


def _back() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("releases"))


def _need(request: HttpRequest, role: str) -> None:
    if not has_role(request.user, role):
        raise PermissionDenied(f"this needs the {role} role")


@login_required
@require_POST
def build_release(request: HttpRequest) -> HttpResponse:
    _need(request, "admin")
    name = request.POST.get("name", "").strip() or None
    ref = request.POST.get("ref", "").strip() or None
    try:
        release = services.build_from_checkout(settings.BASE_DIR, request.user, name, ref)
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"registered release {release.name}; verify it next")
    return _back()


@login_required
@require_POST
def upload_release(request: HttpRequest) -> HttpResponse:
    _need(request, "admin")
    wheel = request.FILES.get("wheel")
    if wheel is None:
        messages.error(request, "choose a wheel file to upload")
        return _back()
    try:
        release = services.register_upload(wheel.chunks(), wheel.name, request.user)
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"registered release {release.name}; verify it next")
    return _back()


@login_required
@require_POST
def change_release(request: HttpRequest, name: str, change: str) -> HttpResponse:
    if change not in ("verify", "retire", "yank"):
        raise Http404("the change must be verify, retire or yank")
    release = Release.objects.filter(name=name[:63]).first()
    if release is None:
        raise Http404(f"unknown release {name[:63]!r}")
    if change == "verify":
        _need(request, "operator")
        if error := queue_verification(release, request.user.get_username()):
            messages.error(request, error)
        else:
            messages.success(request, f"verifying {release.name}: the worker reports back here")
        return _back()
    _need(request, "admin")
    to = {"retire": Release.Status.RETIRED, "yank": Release.Status.YANKED}[change]
    try:
        services.change_status(release, to, request.user, request.POST.get("reason", ""))
    except services.ReleaseError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"release {release.name} is now {to}")
    return _back()
