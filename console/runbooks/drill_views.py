"""The drill history page: each past drill with its expectation, measurement and verdict,
read from its run's steps (the drill actions record them there)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from console.clusters.models import Cluster
from console.runbooks.actions.drills import DRILL_NAMES
from console.runbooks.models import RunbookRun

SHOWN = 50


def summary(run: RunbookRun) -> dict[str, Any]:
    details = [step.detail or {} for step in run.steps.all()]
    expectation = next((d["expectation"] for d in details if "expectation" in d), None)
    judged = next((d for d in details if "verdict" in d), None)
    measured = details[1] if len(details) > 1 and "writer" in details[1] else None
    verdict = judged["verdict"] if judged else ("failed" if run.status == "failed" else "—")
    return {
        "run": run,
        "expectation": expectation,
        "measured": measured,
        "verdict": verdict,
        "why": judged["why"] if judged else run.error or "",
    }


@login_required
@require_GET
def drills(request: HttpRequest, name: str) -> HttpResponse:
    cluster = get_object_or_404(Cluster, name=name)
    runs = (
        RunbookRun.objects.filter(cluster=cluster, action__in=DRILL_NAMES)
        .select_related("requested_by")
        .prefetch_related("steps")
        .order_by("-id")[:SHOWN]
    )
    rows = [summary(run) for run in runs]
    return render(request, "runbooks/drills.html", {"cluster": cluster, "rows": rows})
