"""The cluster dashboard: login, the node table with its leader, quorum, alerts, ages,
the live fragments and the chart data."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster, Node, Sample
from console.events import journal

pytestmark = pytest.mark.django_db


def login_as(client: Client, role: str) -> Client:
    user = get_user_model().objects.create_user(f"{role}-user", password="x" * 12)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return client


@pytest.fixture
def prod() -> Cluster:
    now = timezone.now()
    cluster = Cluster.objects.create(
        name="prod", leader_name="unrdf-daemon-1", term=4, commit_index=120,
        has_quorum=True, cluster_size=3, last_polled_at=now,
    )  # fmt: skip
    for i in range(3):
        Node.objects.create(
            cluster=cluster, name=f"unrdf-daemon-{i}", http_url=f"http://127.0.0.1:{9000 + i}",
            role="leader" if i == 1 else "follower", reachable=True, term=4,
            commit_index=120, lag_ms=0.5, version="0.1.0", last_seen_at=now, last_polled_at=now,
        )  # fmt: skip
    return cluster


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/clusters/prod/",
        "/clusters/prod/fragments/nodes/",
        "/clusters/prod/samples.json",
        "/clusters/prod/history/",
        "/clusters/prod/operations/",
        "/events/",
    ],
)
def test_anonymous_users_are_sent_to_login(client: Client, prod: Cluster, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_with_no_cluster_the_dashboard_says_so(client: Client) -> None:
    response = login_as(client, "viewer").get("/")
    assert b"No clusters registered yet" in response.content


def test_with_one_cluster_the_dashboard_is_its_overview(client: Client, prod: Cluster) -> None:
    response = login_as(client, "viewer").get("/")
    assert response.status_code == 200
    assert b'data-testid="cluster-dashboard" data-cluster="prod"' in response.content


def test_with_several_clusters_the_dashboard_lists_them(client: Client, prod: Cluster) -> None:
    Cluster.objects.create(name="staging")
    html = login_as(client, "viewer").get("/").content.decode()
    assert 'data-testid="cluster-row-prod"' in html
    assert 'data-testid="cluster-row-staging"' in html


def test_the_node_table_shows_every_node_and_marks_the_leader(
    client: Client, prod: Cluster
) -> None:
    html = login_as(client, "viewer").get("/clusters/prod/").content.decode()
    for i in range(3):
        assert f'data-testid="node-row-unrdf-daemon-{i}"' in html
    leader_row = html.split('data-testid="node-row-unrdf-daemon-1"')[1].split("</tr>")[0]
    assert 'data-leader="true"' in leader_row
    assert html.count('data-leader="true"') == 1
    assert "unrdf-daemon-1</dd>" in html.split('data-testid="leader-name"')[1]


def test_quorum_and_fault_tolerance_follow_reachable_nodes(client: Client, prod: Cluster) -> None:
    login_as(client, "viewer")
    assert "can lose 1 node" in client.get("/clusters/prod/").content.decode()
    prod.nodes.filter(name="unrdf-daemon-0").update(reachable=False)
    html = client.get("/clusters/prod/fragments/summary/").content.decode()
    assert "can lose 0 nodes" in html
    assert "2 of 3 reachable, majority 2" in html


def test_an_unreachable_node_shows_its_last_seen_time_as_stale(
    client: Client, prod: Cluster
) -> None:
    seen = timezone.now() - timedelta(seconds=42)
    prod.nodes.filter(name="unrdf-daemon-2").update(reachable=False, last_seen_at=seen)
    html = login_as(client, "viewer").get("/clusters/prod/fragments/nodes/").content.decode()
    row = html.split('data-testid="node-row-unrdf-daemon-2"')[1].split("</tr>")[0]
    assert 'data-reachable="false"' in row
    assert 'class="age stale"' in row
    assert re.search(r">4[2-9] s ago<", row)


def test_a_fresh_value_is_not_marked_stale(client: Client, prod: Cluster) -> None:
    html = login_as(client, "viewer").get("/clusters/prod/fragments/summary/").content.decode()
    assert 'class="age"' in html
    assert "age stale" not in html


def test_firing_alerts_are_counted_in_the_alert_strip(client: Client, prod: Cluster) -> None:
    Alert.objects.create(
        cluster=prod, rule="cluster_size", severity="critical", state="firing",
        summary="cluster has 2 of 3 members", pending_since=timezone.now(),
    )  # fmt: skip
    html = login_as(client, "viewer").get("/clusters/prod/fragments/alerts/").content.decode()
    assert 'data-testid="alerts-firing" data-count="1"' in html
    assert "cluster has 2 of 3 members" in html


def test_the_latest_events_fragment_lists_journal_rows(client: Client, prod: Cluster) -> None:
    journal.append("leader.changed", actor="collector", cluster=prod, to="unrdf-daemon-1")
    html = login_as(client, "viewer").get("/clusters/prod/fragments/events/").content.decode()
    assert 'data-kind="leader.changed"' in html


def test_an_unknown_fragment_is_404(client: Client, prod: Cluster) -> None:
    response = login_as(client, "viewer").get("/clusters/prod/fragments/secrets/")
    assert response.status_code == 404


def test_runbook_buttons_are_for_operators_only(client: Client, prod: Cluster) -> None:
    viewer_html = login_as(Client(), "viewer").get("/clusters/prod/").content.decode()
    operator_html = login_as(client, "operator").get("/clusters/prod/").content.decode()
    assert 'data-testid="runbook-actions"' not in viewer_html
    assert 'data-testid="runbook-actions"' in operator_html
    assert 'data-testid="runbook-runs"' in viewer_html


def test_the_page_carries_the_journal_head_for_the_live_feed(client: Client, prod: Cluster) -> None:
    event = journal.append("node.recovered", actor="collector", cluster=prod, node="x")
    html = login_as(client, "viewer").get("/clusters/prod/").content.decode()
    assert f'data-last-id="{event.id}"' in html
    assert "vendor/uplot/uPlot.iife.min.js" in html
    assert "cdn" not in html.lower()


def test_samples_json_gives_the_last_hour_as_columns(client: Client, prod: Cluster) -> None:
    now = timezone.now()
    Sample.objects.create(cluster=prod, at=now - timedelta(hours=2), p95_ms=99.0)
    for seconds, lag in ((20, 1.5), (10, 2.5)):
        Sample.objects.create(
            cluster=prod, at=now - timedelta(seconds=seconds), replication_lag_ms=lag,
            executions_per_s=3.0, p95_ms=12.0,
        )  # fmt: skip
    data = login_as(client, "viewer").get("/clusters/prod/samples.json?minutes=60").json()
    assert data["replication_lag_ms"] == [1.5, 2.5]
    assert data["p95_ms"] == [12.0, 12.0]
    assert len(data["t"]) == 2 and data["t"][0] < data["t"][1]


def test_samples_json_refuses_a_bad_window(client: Client, prod: Cluster) -> None:
    response = login_as(client, "viewer").get("/clusters/prod/samples.json?minutes=-5")
    assert response.status_code == 400


def test_the_nav_shows_the_users_role_and_every_page(client: Client, prod: Cluster) -> None:
    html = login_as(client, "operator").get("/clusters/prod/").content.decode()
    assert 'data-testid="user-role">operator<' in html
    for href in ("/clusters/prod/history/", "/clusters/prod/operations/", "/events/", "/api/docs"):
        assert f'href="{href}"' in html
