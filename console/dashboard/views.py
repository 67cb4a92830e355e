"""Dashboard, cluster detail (+ its live fragments and chart data), history, operations.

Thin: queries live in fragments.py, history.py and charts.py; daemon calls in
daemon_operations.py.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from console.clusters.daemon_client import DaemonError
from console.clusters.models import Cluster
from console.core.roles import has_role
from console.dashboard import charts, daemon_operations, fragments, history
from console.dashboard.forms import DefineOperationForm, ExecuteOperationForm, HistoryFilterForm
from console.events import kinds
from console.events.stream import head_id


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    clusters = list(Cluster.objects.all())
    if len(clusters) == 1:
        return _detail(request, clusters[0])
    return render(request, "dashboard/dashboard.html", {"clusters": clusters})


@login_required
@require_GET
def cluster_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _detail(request, get_object_or_404(Cluster, name=name))


def _detail(request: HttpRequest, cluster: Cluster) -> HttpResponse:
    # Read the journal head first: an event during rendering is then sent again (a
    # harmless extra refresh) rather than missed.
    last_event_id = head_id()
    context = {
        **fragments.page_context(cluster, request.user),
        "last_event_id": last_event_id,
        "event_kinds": kinds.dashboard_data(),
    }
    return render(request, "dashboard/detail.html", context)


@login_required
@require_GET
def fragment(request: HttpRequest, name: str, part: str) -> HttpResponse:
    if part not in fragments.PARTS:
        raise Http404(f"no fragment {part!r}")
    cluster = get_object_or_404(Cluster, name=name)
    context = fragments.part_context(part, cluster, request.user)
    return render(request, f"dashboard/_{part}.html", context)


@login_required
@require_GET
def samples(request: HttpRequest, name: str) -> JsonResponse:
    cluster = get_object_or_404(Cluster, name=name)
    minutes = request.GET.get("minutes", "60")
    if not minutes.isdigit():
        return JsonResponse({"error": "minutes must be a whole number"}, status=400)
    return JsonResponse(charts.series(cluster, int(minutes)))


@login_required
@require_GET
def cluster_history(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        context = {"cluster": cluster, "form": form, "page": None}
        return render(request, "dashboard/history.html", context, status=400)
    page = history.page(
        cluster,
        form.filters(),
        before=form.cleaned_data["before"],
        after=form.cleaned_data["after"],
    )
    query = request.GET.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    context = {
        "cluster": cluster,
        "form": form,
        "page": page,
        "filter_query": query.urlencode(),
        **history.choices(cluster),
    }
    return render(request, "dashboard/history.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def cluster_operations(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    can_act = has_role(request.user, "operator")
    define_form = DefineOperationForm()
    status = 200
    if request.method == "POST":
        if not can_act:
            raise PermissionDenied("defining or executing operations needs the operator role")
        define_form, status = _act(request, cluster)
        if status == 303:
            return redirect("cluster-operations", name=cluster.name)
    operations, error = [], None
    try:
        operations = daemon_operations.list_operations(cluster)
    except DaemonError as err:
        error = err.message
    context = {
        "cluster": cluster,
        "operations": operations,
        "daemon_error": error,
        "define_form": define_form,
        "can_act": can_act,
    }
    return render(request, "dashboard/operations.html", context, status=status)


def _act(request: HttpRequest, cluster: Cluster) -> tuple[DefineOperationForm, int]:
    """Handle one POST; 303 means done (message set), anything else re-renders the page."""
    actor = request.user.get_username()
    if request.POST.get("action") == "execute":
        form = ExecuteOperationForm(request.POST)
        if not form.is_valid():
            messages.error(request, "execute: " + form.errors.as_text().replace("\n", " "))
            return DefineOperationForm(), 400
        op_id = form.cleaned_data["operation"]
        try:
            record = daemon_operations.execute_operation(cluster, op_id, {}, actor)
        except DaemonError as err:
            messages.error(request, f"execute {op_id}: {err.message}")
            return DefineOperationForm(), _status_of(err)
        messages.info(request, f"executed {op_id}: {record.get('status')} ({record.get('id')})")
        return DefineOperationForm(), 303
    form = DefineOperationForm(request.POST)
    if not form.is_valid():
        return form, 400
    try:
        code, _ = daemon_operations.define_operation(cluster, form.definition(), actor)
    except DaemonError as err:
        messages.error(request, f"define {form.cleaned_data['id']}: {err.message}")
        return form, _status_of(err)
    verb = "defined" if code == 201 else "updated"
    messages.info(request, f"{verb} operation {form.cleaned_data['id']}")
    return DefineOperationForm(), 303


def _status_of(err: DaemonError) -> int:
    # The daemon's refusal keeps its 4xx; no answer at all is a bad gateway.
    return err.status if err.status and 400 <= err.status < 500 else 502
