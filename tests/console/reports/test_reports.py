"""The daily and weekly reports, their pages and their JSON endpoints."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import ApiToken
from console.backups.models import Backup
from console.clusters.models import Node, Release
from console.reports.daily import daily_report
from console.reports.models import DataDirSize
from console.reports.weekly import record_data_dir_sizes, weekly_report
from tests.console.reports.support import add_event, add_execution, add_fired_alert, make_cluster

pytestmark = pytest.mark.django_db


def test_the_daily_standup_lists_the_last_24_hours_only() -> None:
    cluster = make_cluster()
    now = timezone.now()
    Node.objects.create(cluster=cluster, name="n0", http_url="http://127.0.0.1:1", reachable=True)
    Node.objects.create(cluster=cluster, name="n1", http_url="http://127.0.0.1:2", reachable=False)
    add_execution(cluster, now - dt.timedelta(hours=1), 5.0)
    add_execution(cluster, now - dt.timedelta(hours=2), 9.0, "timeout", "timed out after 5 ms")
    add_execution(cluster, now - dt.timedelta(hours=30), 9.0, "failure", "yesterday's")
    add_event(cluster, "leader.changed", now - dt.timedelta(hours=3), **{"from": "n0", "to": "n1"})
    add_fired_alert(cluster, now - dt.timedelta(hours=4), now - dt.timedelta(hours=3), "warning")

    report = daily_report(cluster, now)

    assert (report.operations, report.errors, report.success_rate_pct) == (2, 1, 50.0)
    assert [e.error for e in report.failed_executions] == ["timed out after 5 ms"]
    assert [(c.from_leader, c.to_leader) for c in report.leader_changes] == [("n0", "n1")]
    assert report.alerts_fired == 1 and report.alerts[0].resolved_at is not None
    assert (report.reachable_nodes, report.cluster_size) == (1, 3)


def test_the_weekly_review_judges_against_the_targets_and_shows_data_dir_growth(settings) -> None:
    settings.SLO_SUCCESS_PCT = 99.0
    settings.SLO_P95_MS = 100.0
    cluster = make_cluster()
    now = timezone.now()
    node = Node.objects.create(
        cluster=cluster,
        name="n0",
        http_url="http://127.0.0.1:1",
        data_dir_bytes=1000,
        version="1.2",
    )
    assert record_data_dir_sizes(now.date() - dt.timedelta(days=3)) == 1
    assert record_data_dir_sizes(now.date() - dt.timedelta(days=3)) == 0  # once a day
    Node.objects.filter(pk=node.pk).update(data_dir_bytes=5000)
    for i in range(20):
        add_execution(cluster, now - dt.timedelta(days=1), 150.0 if i == 19 else 10.0)

    report = weekly_report(cluster, now)

    assert report.success_rate_pct == 100.0 and report.success_on_target is True
    assert report.p95_ms == 10.0 and report.p95_on_target is True  # rank 19 of 20
    assert report.versions_running == ["1.2"]
    (line,) = report.nodes
    assert (line.data_dir_bytes, line.data_dir_growth_bytes) == (5000, 4000)
    assert line.tls_days_left is None and line.tls_note == "serves plain HTTP: no certificate"
    assert DataDirSize.objects.count() == 1


def test_the_weekly_review_names_the_releases_running_and_newer_verified_ones() -> None:
    cluster = make_cluster()
    for name, status in (
        ("1.0", "active"),
        ("1.1", "verified"),
        ("1.2", "registered"),
        ("1.3", "verified"),
    ):
        Release.objects.create(
            name=name, package_version=name, sha256="0" * 64, size_bytes=1, wheel_path="x",
            source="upload", status=status,
        )  # fmt: skip
    Node.objects.create(cluster=cluster, name="n0", http_url="http://127.0.0.1:1", release="1.0")
    report = weekly_report(cluster)
    assert report.releases_running == ["1.0"]
    assert report.newer_releases == ["1.3", "1.1"]  # verified only, newest first


def test_the_weekly_review_shows_the_latest_verified_backup_and_its_age() -> None:
    cluster = make_cluster()
    now = timezone.now()
    assert weekly_report(cluster, now).backups_note == "no verified backup of this cluster"
    old, newer, _failed = (
        Backup.objects.create(cluster=cluster, source_node="n0", verification=state)
        for state in ("verified", "verified", "failed")
    )
    Backup.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(days=9))
    Backup.objects.filter(pk=newer.pk).update(created_at=now - dt.timedelta(hours=30))
    report = weekly_report(cluster, now)
    assert report.latest_verified_backup_id == newer.pk
    assert report.latest_verified_backup_age_h == pytest.approx(30.0)
    assert report.backups_in_window == 2  # the newer one and the failed one
    assert report.backups_note == f"latest verified backup #{newer.pk}, 30.0 h old"


def test_an_idle_week_is_neither_on_nor_off_target() -> None:
    report = weekly_report(make_cluster())
    assert report.success_rate_pct is None and report.success_on_target is None
    assert report.p95_on_target is None


@pytest.mark.parametrize("which", ["daily", "weekly", "monthly"])
def test_each_report_is_a_page_and_a_json_endpoint_for_any_signed_in_role(
    viewer_client: Client, which: str
) -> None:
    cluster = make_cluster()
    add_execution(cluster, timezone.now() - dt.timedelta(minutes=5), 12.0)
    page = viewer_client.get(f"/reports/{cluster.name}/{which}/")
    assert page.status_code == 200
    assert f'data-testid="report-{which}"' in page.content.decode()
    answer = viewer_client.get(f"/api/reports/{cluster.name}/{which}")
    assert answer.status_code == 200, answer.content
    assert answer.json()["cluster"] == "prod" and answer.json()["operations"] == 1


def test_the_api_takes_a_bearer_token_and_refuses_a_bad_month_and_an_unknown_cluster(
    django_user_model,
) -> None:
    make_cluster()
    _, raw = ApiToken.issue(django_user_model.objects.create_user("tina"), "cli")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    ok = client.get("/api/reports/prod/monthly?month=2026-02")
    assert ok.status_code == 200 and ok.json()["hours_in_month"] == 672
    bad = client.get("/api/reports/prod/monthly?month=2026-13")
    assert bad.status_code == 422 and "month must look like" in bad.json()["detail"]
    assert client.get("/api/reports/nope/daily").status_code == 404
    assert Client().get("/api/reports/prod/daily").status_code == 401


def test_the_monthly_page_refuses_a_bad_month_with_a_400_and_the_index_links_every_report(
    viewer_client: Client,
) -> None:
    make_cluster()
    assert viewer_client.get("/reports/prod/monthly/?month=nope").status_code == 400
    assert viewer_client.get("/reports/nope/daily/").status_code == 404
    index = viewer_client.get("/reports/").content.decode()
    for which in ("daily", "weekly", "monthly"):
        assert f"/reports/prod/{which}/" in index
