"""Runbook pages: request a run (button), a run's detail page, and the live fragments.

Thin on purpose: the decisions are in services/preflight. GETs only read: stale runs
are ended by the collector's reaper (and by the worker at start), not by page views. A request from the page's
JS (header `X-Requested-With: fetch`) gets an HTML fragment with the verdict to show
inline; a plain form post (no JS) is redirected with the verdict as a message.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from console.clusters.models import Cluster
from console.core.roles import has_role
from console.runbooks import services
from console.runbooks.models import ACTIVE_RUN_STATES, RunbookRun
from console.runbooks.plan_view import plan_view
from console.runbooks.progress import run_progress

PARAM_FIELDS = ("node", "target", "release", "to", "soakS")


@login_required
@require_POST
def request_run(request: HttpRequest, name: str) -> HttpResponse:
    if not has_role(request.user, "operator"):
        raise PermissionDenied("running a runbook needs the operator role")
    cluster = get_object_or_404(Cluster, name=name)
    action = request.POST.get("action", "")
    params = {key: request.POST[key] for key in PARAM_FIELDS if request.POST.get(key)}
    dry_run = request.POST.get("dry_run") == "1"
    try:
        outcome = services.request_run(cluster, action, params, request.user, dry_run=dry_run)
    except services.UnknownAction as err:
        return HttpResponseBadRequest(str(err))
    context = {"outcome": outcome, "cluster": cluster, "action": action, "params": params}
    if outcome.ok and outcome.dry_run:
        context["plan"] = plan_view(action, params, outcome.steps)
    if request.headers.get("X-Requested-With") == "fetch":
        return render(request, "runbooks/_verdict.html", context)
    if outcome.run is not None and outcome.ok:
        return HttpResponseRedirect(reverse("run-detail", args=[outcome.run.id]))
    verdict = "safe to run" if outcome.ok else "refused: " + "; ".join(outcome.reasons)
    messages.info(request, f"{action}: {verdict}")
    return HttpResponseRedirect(_back(request))


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.headers.get("Referer") or ""
    allowed = url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    return target if target and allowed else reverse("dashboard")


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(_runs(), id=run_id)
    return render(request, "runbooks/run_detail.html", _run_context(run))


@login_required
@require_GET
def run_steps(request: HttpRequest, run_id: int) -> HttpResponse:
    """The progress and steps alone: the detail page polls them while the run is active."""
    run = get_object_or_404(_runs(), id=run_id)
    return render(request, "runbooks/_steps.html", _run_context(run))


def _run_context(run: RunbookRun, **extra: Any) -> dict[str, Any]:
    # Polled while it holds the cluster (a paused run too: someone may resume it).
    context = {
        "run": run,
        "progress": run_progress(run),
        "active_states": ACTIVE_RUN_STATES,
        "awaiting_promotion": run.status == "paused"
        and run.hold_reason.startswith(services.PROMOTION),
    }
    return context | extra


@login_required
@require_GET
def runs_fragment(request: HttpRequest, name: str) -> HttpResponse:
    """`_runs.html` for one cluster, for live refreshes that do not go through the
    dashboard's own fragment view."""
    cluster = get_object_or_404(Cluster, name=name)
    runs = services.recent_runs(cluster)
    return render(request, "runbooks/_runs.html", {"cluster": cluster, "runs": runs})


@login_required
@require_POST
def cancel_run(request: HttpRequest, run_id: int) -> HttpResponse:
    return _control(request, run_id, services.cancel_run, "cancel")


@login_required
@require_POST
def resume_run(request: HttpRequest, run_id: int) -> HttpResponse:
    return _control(request, run_id, services.resume_run, "resume")


@login_required
@require_POST
def pause_run(request: HttpRequest, run_id: int) -> HttpResponse:
    return _control(request, run_id, services.pause_run, "pause")


@login_required
@require_POST
def abort_run(request: HttpRequest, run_id: int) -> HttpResponse:
    return _control(request, run_id, services.abort_run, "abort")


@login_required
@require_POST
def promote_run(request: HttpRequest, run_id: int) -> HttpResponse:
    return _control(request, run_id, services.promote_run, "promote")


def _control(request: HttpRequest, run_id: int, verb: Any, what: str) -> HttpResponse:
    """The run page's Cancel and Resume buttons: do it, then show the run again. From
    the page's JS, the answer is the run's fragment (the page swaps it in, no reload);
    a plain form post is redirected to the run's page."""
    if not has_role(request.user, "operator"):
        raise PermissionDenied(f"to {what} a run needs the operator role")
    get_object_or_404(RunbookRun, id=run_id)
    refusal = ""
    try:
        verb(run_id, request.user)
    except services.NotNow as err:
        refusal = str(err)
    if request.headers.get("X-Requested-With") == "fetch":
        run = get_object_or_404(_runs(), id=run_id)
        context = _run_context(run, refusal=refusal)
        return render(request, "runbooks/_steps.html", context, status=409 if refusal else 200)
    if refusal:
        messages.error(request, refusal)
    return HttpResponseRedirect(reverse("run-detail", args=[run_id]))


def _runs():
    return RunbookRun.objects.select_related("cluster", "requested_by").prefetch_related("steps")
