"""The audit page: who did what, when, with what outcome."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.clusters.models import Cluster
from console.events import audit


@login_required
@require_GET
def events_page(request: HttpRequest) -> HttpResponse:
    form = audit.AuditFilterForm(request.GET)
    context = {"form": form, "clusters": Cluster.objects.all(), "page": None}
    if not form.is_valid():
        return render(request, "events/list.html", context, status=400)
    page = audit.page(form.cleaned_data)
    query = request.GET.copy()
    query.pop("before", None)
    context.update(
        page=page,
        rows=[(event, audit.outcome(event)) for event in page.rows],
        filter_query=query.urlencode(),
    )
    return render(request, "events/list.html", context)
