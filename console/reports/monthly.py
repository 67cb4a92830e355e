"""The monthly SLO review (runbook "Monthly Review"), done properly.

- Availability is the share of the month's real hours (28 to 31 days, not the runbook's
  fixed 730) the cluster had quorum, over the part of the month the console watched
  (from the Cluster row's creation to now, at most the whole month), so a full month
  can never show more than 100 %.
- Ratios of nothing are None: an idle month has no success rate and spent no budget.
- The error budget: with an availability target of 99.9 % the month may lose 0.1 % of
  its seconds; with a success target of 99 %, 1 % of its operations may fail. Each
  week (days 1-7, 8-14, 15-21, 22-28, 29-end) shows how much of the month's budget it
  spent and its burn rate (its error rate over the allowed rate: 1 burns the budget
  exactly over the period, 14.4 empties a 30-day budget in two days).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.reports import conf, stats


@dataclass(frozen=True)
class Week:
    label: str
    start: datetime
    end: datetime
    watched_s: float
    downtime_s: float
    operations: int
    errors: int
    availability_burn_rate: float | None
    availability_budget_spent_pct: float | None  # of the whole month's budget
    success_burn_rate: float | None
    success_budget_spent_pct: float | None


@dataclass(frozen=True)
class Incident:
    id: int
    rule: str
    severity: str
    summary: str
    fired_at: datetime
    resolved_at: datetime | None


@dataclass
class MonthlyReport:
    cluster: str
    month: str  # YYYY-MM
    start: datetime
    end: datetime
    hours_in_month: int
    watched_hours: float
    downtime_s: float
    availability_pct: float | None
    availability_target_pct: float
    operations: int
    errors: int
    success_rate_pct: float | None
    success_target_pct: float
    p95_ms: float | None
    p99_ms: float | None
    failovers: int
    incidents: list[Incident] = field(default_factory=list)
    availability_budget_s: float = 0.0
    availability_budget_spent_pct: float | None = None
    success_budget_errors: float | None = None
    success_budget_spent_pct: float | None = None
    weeks: list[Week] = field(default_factory=list)


def parse_month(text: str) -> tuple[int, int]:
    """`2026-02` -> (2026, 2); anything else is a ValueError with a one-line message."""
    try:
        year_s, month_s = text.split("-")
        year, month = int(year_s), int(month_s)
    except ValueError:
        raise ValueError(f"month must look like 2026-02, not {text[:20]!r}") from None
    if not (1 <= month <= 12 and 2000 <= year <= 9999):
        raise ValueError(f"month must look like 2026-02, not {text[:20]!r}")
    return year, month


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    days = calendar.monthrange(year, month)[1]
    return start, start + timedelta(days=days)


def _burn(bad: float, total: float, allowed_fraction: float) -> float | None:
    if total <= 0 or allowed_fraction <= 0:
        return None
    return (bad / total) / allowed_fraction


def _spent_pct(bad: float, budget: float | None) -> float | None:
    if budget is None or budget <= 0:
        return None
    return 100.0 * bad / budget


def _weeks(
    cluster: Cluster,
    start: datetime,
    end: datetime,
    now: datetime,
    budgets: tuple[float, float | None],
    allowed: tuple[float, float],
) -> list[Week]:
    availability_budget_s, success_budget_errors = budgets
    weeks = []
    week_start = start
    while week_start < end:
        week_end = min(week_start + timedelta(days=7), end)
        watch_start, watch_end = stats.watched_window(cluster, week_start, min(week_end, now))
        watched_s = (watch_end - watch_start).total_seconds()
        down = stats.downtime_s(cluster, watch_start, watch_end)
        figures = stats.execution_figures(cluster, week_start, week_end)
        weeks.append(
            Week(
                label=f"days {week_start.day}-{(week_end - timedelta(seconds=1)).day}",
                start=week_start,
                end=week_end,
                watched_s=watched_s,
                downtime_s=down,
                operations=figures.operations,
                errors=figures.errors,
                availability_burn_rate=_burn(down, watched_s, allowed[0]),
                availability_budget_spent_pct=_spent_pct(down, availability_budget_s),
                success_burn_rate=_burn(figures.errors, figures.operations, allowed[1]),
                success_budget_spent_pct=_spent_pct(figures.errors, success_budget_errors),
            )
        )
        week_start = week_end
    return weeks


def monthly_report(
    cluster: Cluster, year: int, month: int, now: datetime | None = None
) -> MonthlyReport:
    now = now or timezone.now()
    start, end = month_bounds(year, month)
    watch_start, watch_end = stats.watched_window(cluster, start, min(end, now))
    watched_s = (watch_end - watch_start).total_seconds()
    down = stats.downtime_s(cluster, watch_start, watch_end)
    figures = stats.execution_figures(cluster, start, end)
    availability_target, success_target = conf.availability_target_pct(), conf.success_target_pct()
    allowed = (1 - availability_target / 100, 1 - success_target / 100)
    month_s = (end - start).total_seconds()
    availability_budget_s = allowed[0] * month_s
    success_budget_errors = allowed[1] * figures.operations if figures.operations else None
    incidents = Alert.objects.filter(cluster=cluster, fired_at__gte=start, fired_at__lt=end)
    return MonthlyReport(
        cluster=cluster.name,
        month=f"{year:04d}-{month:02d}",
        start=start,
        end=end,
        hours_in_month=int(month_s // 3600),
        watched_hours=watched_s / 3600,
        downtime_s=down,
        availability_pct=stats.ratio_pct(watched_s - down, watched_s),
        availability_target_pct=availability_target,
        operations=figures.operations,
        errors=figures.errors,
        success_rate_pct=figures.success_rate_pct,
        success_target_pct=success_target,
        p95_ms=figures.p95_ms,
        p99_ms=figures.p99_ms,
        failovers=stats.failovers(cluster, start, end),
        incidents=[
            Incident(a.id, a.rule, a.severity, a.summary, a.fired_at, a.resolved_at)
            for a in incidents.order_by("fired_at")
        ],
        availability_budget_s=availability_budget_s,
        availability_budget_spent_pct=_spent_pct(down, availability_budget_s),
        success_budget_errors=success_budget_errors,
        success_budget_spent_pct=_spent_pct(figures.errors, success_budget_errors),
        weeks=_weeks(
            cluster, start, end, now, (availability_budget_s, success_budget_errors), allowed
        ),
    )
