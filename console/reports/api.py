"""REST for the reports, mounted by console/api.py at /api/reports: any signed-in role
may read them. Unknown cluster 404, a malformed month 422 with one line."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from console.accounts.auth import api_auth
from console.clusters.lookup import get_cluster
from console.reports.daily import DailyReport, daily_report
from console.reports.monthly import MonthlyReport, monthly_report, parse_month
from console.reports.weekly import WeeklyReport, weekly_report

router = Router(auth=api_auth, tags=["reports"])


class MonthQuery(Schema):
    month: str | None = None  # YYYY-MM; the current month when absent


def month_of(text: str | None) -> tuple[int, int]:
    if not text:
        now = timezone.now()
        return now.year, now.month
    try:
        return parse_month(text)
    except ValueError as err:
        raise HttpError(422, str(err)) from None


@router.get("/{cluster}/daily", response=DailyReport)
def daily(request: HttpRequest, cluster: str) -> DailyReport:
    """The daily standup: health now, the last 24 h of alerts, failures, leader changes, runs."""
    return daily_report(get_cluster(cluster))


@router.get("/{cluster}/weekly", response=WeeklyReport)
def weekly(request: HttpRequest, cluster: str) -> WeeklyReport:
    """Weekly maintenance: 7-day success rate and p95 against target, nodes, releases."""
    return weekly_report(get_cluster(cluster))


@router.get("/{cluster}/monthly", response=MonthlyReport)
def monthly(request: HttpRequest, cluster: str, query: Query[MonthQuery]) -> MonthlyReport:
    """The monthly SLO review with its error budget per week (`?month=2026-02`)."""
    year, month = month_of(query.month)
    return monthly_report(get_cluster(cluster), year, month)
