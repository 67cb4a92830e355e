"""/api/clusters/{name}/executions: keyset pages by seq, filters, and index use at scale."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from console.clusters.models import Cluster, Execution
from console.dashboard.api import ExecutionFilters, executions_page, executions_query
from tests.console.dashboard.bulk_rows import insert_then_index

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


def test_a_known_cluster_with_no_matching_rows_is_an_empty_page_not_a_404(
    viewer_client, cluster
) -> None:
    response = viewer_client.get("/api/clusters/c1/executions?operation=never")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_before_seq": None}


def test_a_cluster_s_history_holds_only_its_own_executions(viewer_client, cluster) -> None:
    other = Cluster.objects.create(name="c2")
    Execution.objects.create(
        cluster=other,
        seq=1000,
        execution_id="other",
        operation_id="op-a",
        status="success",
        duration_ms=1.0,
        node_name="unrdf-daemon-0",
        started_at=T0,
        finished_at=T0,
    )
    mine = viewer_client.get("/api/clusters/c1/executions?limit=500").json()["items"]
    theirs = viewer_client.get("/api/clusters/c2/executions").json()["items"]
    assert [item["seq"] for item in mine] == list(range(100, 0, -1))
    assert [item["execution_id"] for item in theirs] == ["other"]


@pytest.mark.parametrize("query", ["", "?status=failure", "?since=2026-01-01T00:30:00Z"])
def test_a_page_reads_the_cluster_and_its_rows_in_one_query(
    viewer_client, cluster, query: str
) -> None:
    """The cluster is looked up inside the page's query, not in a round trip of its own
    (a time range without before_seq also asks for the newest seq, as before)."""
    viewer_client.get(f"/api/clusters/c1/executions{query}")  # the session, warmed up
    with CaptureQueriesContext(connection) as queries:
        response = viewer_client.get(f"/api/clusters/c1/executions{query}")
    assert response.status_code == 200 and response.json()["items"]
    reads = [q["sql"] for q in queries.captured_queries if "clusters_" in q["sql"]]
    assert len(reads) == (2 if "since" in query else 1), reads


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
        insert_then_index(
            cursor,
            "clusters_execution",
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
