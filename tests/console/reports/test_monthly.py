"""The monthly SLO review against executions and journal events the test wrote: an idle
month, a month with a failover and an outage, and the month's real length."""

from __future__ import annotations

import datetime as dt

import pytest

from console.reports.monthly import monthly_report, parse_month
from tests.console.reports.support import (
    add_event,
    add_execution,
    add_fired_alert,
    make_cluster,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def test_an_idle_month_has_full_availability_and_no_success_rate_instead_of_dividing_by_zero(
    settings,
) -> None:
    cluster = make_cluster(created_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    report = monthly_report(cluster, 2026, 2, now=dt.datetime(2026, 3, 5, tzinfo=UTC))
    assert report.hours_in_month == 28 * 24  # February 2026: 672 hours, not 730
    assert report.watched_hours == 672
    assert report.availability_pct == 100.0
    assert (report.operations, report.errors) == (0, 0)
    assert report.success_rate_pct is None
    assert (report.p95_ms, report.p99_ms) == (None, None)
    assert report.success_budget_errors is None and report.success_budget_spent_pct is None
    assert report.availability_budget_spent_pct == 0.0
    assert report.failovers == 0 and report.incidents == []
    assert [w.label for w in report.weeks] == ["days 1-7", "days 8-14", "days 15-21", "days 22-28"]
    assert all(w.success_burn_rate is None for w in report.weeks)


def test_a_month_with_a_failover_and_an_outage_counts_them_against_the_real_hours(
    settings,
) -> None:
    settings.SLO_AVAILABILITY_PCT = 99.9
    settings.SLO_SUCCESS_PCT = 99.0
    cluster = make_cluster(created_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    # January 2026 has 31 days: 744 hours. A 30-minute outage on the 10th.
    down_at = dt.datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
    add_event(cluster, "leader.changed", down_at, **{"from": "n0", "to": None, "term": 4})
    add_event(cluster, "cluster.quorum", down_at, has_quorum=False)
    up_at = down_at + dt.timedelta(minutes=30)
    add_event(cluster, "leader.changed", up_at, **{"from": None, "to": "n1", "term": 5})
    add_event(cluster, "cluster.quorum", up_at, has_quorum=True)
    # The console's first election is not a failover; events outside the month do not count.
    add_event(cluster, "leader.changed", dt.datetime(2026, 1, 1, 0, 1, tzinfo=UTC), to="n0")
    add_event(
        cluster, "leader.changed", dt.datetime(2026, 2, 1, 0, 1, tzinfo=UTC), **{"from": "n1"}
    )
    add_fired_alert(cluster, down_at, up_at, "critical")
    # 200 operations: 196 succeed in 1..196 ms, 4 fail (2 in week 1, 2 in week 2).
    for i in range(196):
        add_execution(cluster, dt.datetime(2026, 1, 20, tzinfo=UTC), float(i + 1))
    for day in (2, 3, 9, 10):
        add_execution(cluster, dt.datetime(2026, 1, day, tzinfo=UTC), 500.0, "failure", "boom")
    add_execution(cluster, dt.datetime(2026, 2, 1, tzinfo=UTC), 1.0, "failure")  # February

    report = monthly_report(cluster, 2026, 1, now=dt.datetime(2026, 2, 3, tzinfo=UTC))

    assert report.hours_in_month == 744
    assert report.downtime_s == 1800
    assert report.availability_pct == pytest.approx(100 * (744 * 3600 - 1800) / (744 * 3600))
    assert (report.operations, report.errors) == (200, 4)
    assert report.success_rate_pct == pytest.approx(98.0)
    assert report.p95_ms == 190.0  # nearest rank 190 of the sorted 200 durations: 190 ms
    assert report.p99_ms == 500.0  # rank 198: among the four 500 ms failures
    assert report.failovers == 1
    assert [(i.severity, i.resolved_at) for i in report.incidents] == [("critical", up_at)]
    # Budgets: 0.1 % of 744 h = 2678.4 s of downtime; 1 % of 200 operations = 2 errors.
    assert report.availability_budget_s == pytest.approx(2678.4)
    assert report.availability_budget_spent_pct == pytest.approx(100 * 1800 / 2678.4)
    assert report.success_budget_errors == pytest.approx(2.0)
    assert report.success_budget_spent_pct == pytest.approx(200.0)
    weeks = {w.label: w for w in report.weeks}
    assert list(weeks) == ["days 1-7", "days 8-14", "days 15-21", "days 22-28", "days 29-31"]
    assert weeks["days 8-14"].downtime_s == 1800 and weeks["days 1-7"].downtime_s == 0
    week_s = 7 * 86400
    assert weeks["days 8-14"].availability_burn_rate == pytest.approx((1800 / week_s) / 0.001)
    assert (weeks["days 1-7"].operations, weeks["days 1-7"].errors) == (2, 2)
    assert weeks["days 1-7"].success_burn_rate == pytest.approx(1.0 / 0.01)
    assert weeks["days 15-21"].success_burn_rate == 0.0
    assert weeks["days 22-28"].success_burn_rate is None  # no operations that week


def test_the_current_month_counts_only_the_hours_watched_so_far() -> None:
    created = dt.datetime(2026, 3, 10, tzinfo=UTC)
    cluster = make_cluster(created_at=created)
    add_event(cluster, "cluster.quorum", dt.datetime(2026, 3, 11, 23, tzinfo=UTC), has_quorum=False)
    now = dt.datetime(2026, 3, 12, tzinfo=UTC)  # still down "now"
    report = monthly_report(cluster, 2026, 3, now=now)
    assert report.hours_in_month == 744
    assert report.watched_hours == 48
    assert report.downtime_s == 3600
    assert report.availability_pct == pytest.approx(100 * 47 / 48)


def test_a_month_before_the_cluster_was_watched_has_no_availability() -> None:
    cluster = make_cluster(created_at=dt.datetime(2026, 5, 1, tzinfo=UTC))
    report = monthly_report(cluster, 2026, 4, now=dt.datetime(2026, 5, 2, tzinfo=UTC))
    assert report.watched_hours == 0 and report.availability_pct is None


@pytest.mark.parametrize("text", ["2026", "2026-13", "26-01", "x-y", "2026-01-01", ""])
def test_a_malformed_month_is_refused_with_one_line(text: str) -> None:
    with pytest.raises(ValueError, match="month must look like 2026-02"):
        parse_month(text)
