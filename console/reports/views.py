"""The report pages: live figures, printable (the stylesheet hides the navigation when
printing). Thin: the report functions compute, the templates present."""

from __future__ import annotations

from dataclasses import asdict

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from console.clusters.models import Cluster
from console.reports.daily import daily_report
from console.reports.monthly import monthly_report, parse_month
from console.reports.weekly import weekly_report


def _cluster(name: str) -> Cluster:
    cluster = Cluster.objects.filter(name=name).first() if "\x00" not in name else None
    if cluster is None:
        raise Http404(f"no cluster named {name!r}")
    return cluster


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "reports/index.html",
        {"clusters": Cluster.objects.all(), "month": timezone.now().strftime("%Y-%m")},
    )


@login_required
@require_GET
def daily(request: HttpRequest, name: str) -> HttpResponse:
    report = daily_report(_cluster(name))
    return render(request, "reports/daily.html", {"report": report})


@login_required
@require_GET
def weekly(request: HttpRequest, name: str) -> HttpResponse:
    report = weekly_report(_cluster(name))
    return render(request, "reports/weekly.html", {"report": report})


@login_required
@require_GET
def monthly(request: HttpRequest, name: str) -> HttpResponse:
    cluster = _cluster(name)
    text = request.GET.get("month") or timezone.now().strftime("%Y-%m")
    try:
        year, month = parse_month(text)
    except ValueError as err:
        return render(request, "reports/bad_month.html", {"error": str(err)}, status=400)
    report = monthly_report(cluster, year, month)
    chart = {
        "labels": [w.label for w in report.weeks],
        "availability_burn": [w.availability_burn_rate for w in report.weeks],
        "success_burn": [w.success_burn_rate for w in report.weeks],
        "availability_spent": [w.availability_budget_spent_pct for w in report.weeks],
        "success_spent": [w.success_budget_spent_pct for w in report.weeks],
    }
    return render(
        request,
        "reports/monthly.html",
        {"report": report, "chart": chart, "weeks": [asdict(w) for w in report.weeks]},
    )
