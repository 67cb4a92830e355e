"""/api/clusters/{name}/executions: keyset pages by seq, filters, and index use at scale."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client

from console.clusters.models import Cluster, Execution
from console.dashboard.api import ExecutionFilters, executions_page, executions_query

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def cluster() -> Cluster:
    cluster = Cluster.objects.create(name="c1")
    Execution.objects.bulk_create(
        Execution(
            cluster=cluster,
            seq=seq,
            execution_id=f"e{seq}",
            operation_id="op-a" if seq % 2 else "op-b",
            status="failure" if seq % 5 == 0 else "success",
            duration_ms=1.0,
            node_name=f"unrdf-daemon-{seq % 3}",
            started_at=T0 + timedelta(minutes=seq),
            finished_at=T0 + timedelta(minutes=seq, seconds=1),
        )
        for seq in range(1, 101)
    )
    return cluster


def all_pages(viewer_client: Client, query: str, limit: int) -> list[int]:
    seqs: list[int] = []
    cursor = ""
    while True:
        page = viewer_client.get(f"/api/clusters/c1/executions?limit={limit}{query}{cursor}").json()
        seqs += [item["seq"] for item in page["items"]]
        if page["next_before_seq"] is None:
            return seqs
        cursor = f"&before_seq={page['next_before_seq']}"


def test_pages_walk_the_history_newest_first_without_gaps_or_repeats(
    viewer_client, cluster
) -> None:
    assert all_pages(viewer_client, "", limit=7) == list(range(100, 0, -1))


def test_the_last_page_says_there_is_no_next_one(viewer_client, cluster) -> None:
    page = viewer_client.get("/api/clusters/c1/executions?limit=100").json()
    assert len(page["items"]) == 100
    assert page["next_before_seq"] is None


def test_filters_by_operation_status_and_node(viewer_client, cluster) -> None:
    assert all_pages(viewer_client, "&operation=op-b&status=failure", 3) == [
        100,
        90,
        80,
        70,
        60,
        50,
        40,
        30,
        20,
        10,
    ]
    nodes = {
        item["node_name"]
        for item in viewer_client.get(
            "/api/clusters/c1/executions?node=unrdf-daemon-1&limit=500"
        ).json()["items"]
    }
    assert nodes == {"unrdf-daemon-1"}


def test_filters_by_time_range(viewer_client, cluster) -> None:
    since = (T0 + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    until = (T0 + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    seqs = all_pages(viewer_client, f"&since={since}&until={until}", 2)
    # finished_at is seq minutes + 1 s: 10 (10:01) is in, 15 (15:01) is past `until`.
    assert seqs == [14, 13, 12, 11, 10]


def test_an_unknown_cluster_is_a_404(viewer_client) -> None:
    response = viewer_client.get("/api/clusters/nope/executions")
    assert response.status_code == 404
    assert response.json()["detail"] == "no cluster named 'nope'"


def test_bad_parameters_are_a_422_with_a_readable_line(viewer_client, cluster) -> None:
    response = viewer_client.get("/api/clusters/c1/executions?limit=0&since=yesterday")
    assert response.status_code == 422
    error = response.json()["error"]
    assert "limit" in error and "since" in error


def test_a_seq_beyond_bigint_is_refused_not_a_crash(viewer_client, cluster) -> None:
    assert viewer_client.get(f"/api/clusters/c1/executions?before_seq={2**64}").status_code == 422


@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's")
def test_history_queries_use_the_indexes_at_a_million_rows(cluster) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO clusters_execution (cluster_id, seq, execution_id, operation_id, status,
                duration_ms, node_name, started_at, finished_at, attempts, cached, error)
            SELECT %s, s, 'x' || s, 'op-' || (s %% 50), CASE WHEN s %% 20 = 0 THEN 'failure' ELSE 'success' END,
                1.0, 'unrdf-daemon-' || (s %% 3), %s + s * interval '1 second',
                %s + s * interval '1 second', 1, false, ''
            FROM generate_series(1000, 1000999) AS s
            """,
            [cluster.id, T0, T0],
        )
        cursor.execute("ANALYZE clusters_execution")
    queries = [
        ExecutionFilters(),
        ExecutionFilters(before_seq=500_000),
        ExecutionFilters(operation="op-7"),
        ExecutionFilters(status="failure", before_seq=900_000),
        ExecutionFilters(node="unrdf-daemon-2", operation="op-3"),
        ExecutionFilters(
            since=T0 + timedelta(seconds=400_000), until=T0 + timedelta(seconds=400_100)
        ),
    ]
    for filters in queries:
        sql_plan = executions_query(cluster, filters).explain()
        assert "Seq Scan" not in sql_plan, f"{filters}:\n{sql_plan}"
        started = datetime.now(UTC)
        page, _ = executions_page(cluster, filters)
        elapsed_ms = (datetime.now(UTC) - started).total_seconds() * 1000
        assert page
        assert elapsed_ms < 200, f"{filters} took {elapsed_ms:.0f} ms:\n{sql_plan}"
