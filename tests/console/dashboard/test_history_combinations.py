"""The history API over every combination of the page's filters: the same answers as a
plain filter-and-sort, and, on PostgreSQL, each page read from an index in page order."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from console.clusters.models import Cluster, Execution
from console.dashboard.api import ExecutionFilters, executions_page, executions_query
from tests.console.dashboard.bulk_rows import insert_then_index

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPERATIONS, STATUSES, NODES = ("op-a", "op-b", "op-c"), ("success", "failure"), ("n0", "n1")


@pytest.fixture
def shuffled() -> Cluster:
    """300 executions whose finish times are NOT in seq order (a node's clock, a long
    run finishing after later ones): paging by seq inside a time range must not rely
    on the two orders agreeing. One combination (op-c failed on n1) never happens."""
    cluster = Cluster.objects.create(name="c1")
    rng = random.Random(16)
    rows = []
    for seq in range(1, 301):
        operation, status, node = rng.choice(OPERATIONS), rng.choice(STATUSES), rng.choice(NODES)
        if (operation, status, node) == ("op-c", "failure", "n1"):
            status = "success"
        finished = T0 + timedelta(seconds=seq * 10 + rng.randint(-400, 400))
        rows.append(
            Execution(
                cluster=cluster,
                seq=seq,
                execution_id=f"e{seq}",
                operation_id=operation,
                status=status,
                duration_ms=1.0,
                node_name=node,
                started_at=finished - timedelta(seconds=1),
                finished_at=finished,
            )
        )
    Execution.objects.bulk_create(rows)
    return cluster


def combinations() -> list[dict[str, Any]]:
    """Every subset of the filters, with values that match some rows or none."""
    values: dict[str, list[Any]] = {
        "operation": [None, "op-a", "op-c"],
        "status": [None, "failure"],
        "node": [None, "n1"],
        "range": [
            None,
            (T0 + timedelta(seconds=1000), None),
            (None, T0 + timedelta(seconds=600)),
            (T0 + timedelta(seconds=1200), T0 + timedelta(seconds=2200)),
        ],
    }
    out = []
    for operation, status, node, time_range in itertools.product(*values.values()):
        since, until = time_range or (None, None)
        params = {"operation": operation, "status": status, "node": node}
        out.append({**params, "since": since, "until": until})
    return out


def expected(params: dict[str, Any]) -> list[int]:
    """The answer by definition: filter every row in Python, newest seq first."""
    rows = Execution.objects.all()
    keep = [
        row.seq
        for row in rows
        if all(
            value is None or getattr(row, field) == value
            for field, value in (
                ("operation_id", params["operation"]),
                ("status", params["status"]),
                ("node_name", params["node"]),
            )
        )
        and (params["since"] is None or row.finished_at >= params["since"])
        and (params["until"] is None or row.finished_at < params["until"])
    ]
    return sorted(keep, reverse=True)


def walk(cluster: Cluster | str, params: dict[str, Any], limit: int) -> list[int]:
    seqs: list[int] = []
    before = None
    while True:
        page, before = executions_page(
            cluster, ExecutionFilters(limit=limit, before_seq=before, **params)
        )
        seqs += [row["seq"] for row in page]
        if before is None:
            return seqs


def test_every_filter_combination_pages_exactly_the_filtered_rows_newest_first(
    shuffled: Cluster,
) -> None:
    checked = 0
    for params in combinations():
        want = expected(params)
        assert walk(shuffled, params, limit=7) == want, params
        # By name (as the API asks), the cluster looked up inside the page's query.
        assert walk(shuffled.name, params, limit=7) == want, params
        checked += bool(want)
    assert checked > 40  # most combinations match something: the test is not vacuous


def test_a_combination_that_never_happened_is_an_empty_page(shuffled: Cluster) -> None:
    params = {"operation": "op-c", "status": "failure", "node": "n1"}
    assert executions_page(shuffled, ExecutionFilters(**params)) == ([], None)


def test_the_api_answers_a_time_range_in_seq_order_when_finish_times_disagree(
    viewer_client, shuffled: Cluster
) -> None:
    since, until = (T0 + timedelta(seconds=1200)).isoformat(), (T0 + timedelta(seconds=2200))
    params = {"since": since, "until": until.isoformat(), "limit": 5}
    items = viewer_client.get("/api/clusters/c1/executions", params).json()["items"]
    window = {"operation": None, "status": None, "node": None}
    assert [item["seq"] for item in items] == expected(
        {**window, "since": T0 + timedelta(seconds=1200), "until": until}
    )[:5]


# ---- PostgreSQL: what each query reads ---------------------------------------
ROWS = 200_000


def rows_read(plan: dict[str, Any]) -> int:
    """Execution rows a plan's scans returned or filtered out: what it read, in all (the
    cluster's own row, looked up by name through its unique index, is not counted)."""
    own = 0
    # A bitmap index scan's rows are the ones its heap scan reads: count them once.
    scan = "Scan" in plan["Node Type"] and plan["Node Type"] != "Bitmap Index Scan"
    if scan and plan.get("Relation Name") == "clusters_execution":
        own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get(
            "Actual Loops", 1
        )
        own += plan.get("Rows Removed by Index Recheck", 0)
    return own + sum(rows_read(child) for child in plan.get("Plans", []))


def insert_rows(cluster: Cluster) -> None:
    """ROWS more rows, one a second: operation seq % 20, a failure every 50th, node seq % 3,
    except that neither failures nor op-7 ever ran on n2."""
    with connection.cursor() as cursor:
        insert_then_index(
            cursor,
            "clusters_execution",
            """
            INSERT INTO clusters_execution (cluster_id, seq, execution_id, operation_id,
                status, duration_ms, node_name, started_at, finished_at, attempts, cached, error)
            SELECT %s, s, 'x' || s, 'op-' || (s %% 20),
                   CASE WHEN s %% 50 = 0 THEN 'failure' ELSE 'success' END, 1.0,
                   CASE WHEN s %% 50 = 0 OR s %% 20 = 7 THEN 'n' || (s %% 2)
                        ELSE 'n' || (s %% 3) END,
                   %s + s * interval '1 second', %s + s * interval '1 second', 1, false, ''
            FROM generate_series(1000, 1000 + %s) AS s
            """,
            [cluster.id, T0, T0, ROWS],
        )


def plan_rows_read(key: Cluster | str, filters: ExecutionFilters) -> int:
    sql, args = executions_query(key, filters).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", args)
        output = cursor.fetchone()[0]
    return rows_read((output if isinstance(output, list) else json.loads(output))[0]["Plan"])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's")
def test_on_postgresql_no_filter_combination_reads_more_than_a_thousand_rows_for_a_page(
    shuffled: Cluster,
) -> None:
    """200,000 more rows, one a second: operation seq % 20, a failure every 50th, node
    seq % 3, except that neither failures nor op-7 ever ran on n2. Every combination,
    on the first and a deep page, alone or within a time range (at the top, middle and
    bottom of the history, at most 900 rows wide), reads at most 1,000 rows for its
    51: the ones that match nothing too. Before the combination indexes, "failures on
    n2" read all 4,000 failures and "op-7 on n2" all 10,000 op-7 rows; before the GiST
    index, "until <the oldest 1 %>" walked all 200,000 rows down from the newest."""
    insert_rows(shuffled)
    top, middle, old = 1000 + ROWS, 1000 + ROWS // 2, 1000 + ROWS // 400
    equality = [
        {},
        {"operation": "op-7"},
        {"status": "failure"},
        {"node": "n1"},
        {"status": "failure", "node": "n1"},
        {"status": "failure", "node": "n2"},  # none
        {"operation": "op-10", "status": "failure"},
        {"operation": "op-7", "node": "n1"},
        {"operation": "op-7", "node": "n2"},  # none
        {"operation": "op-10", "status": "failure", "node": "n0"},
        {"operation": "op-10", "status": "failure", "node": "n2"},  # none
        {"operation": "op-7", "status": "failure"},  # none: op-7 is odd
        {"status": "timeout"},  # none
    ]
    ranges = [
        {},
        {"since": at(top - 900)},
        {"until": at(old)},
        {"since": at(middle - 900), "until": at(middle)},
    ]
    # The cluster as a row and by name (looked up inside the query, as the API does).
    keys = (shuffled, shuffled.name)
    for params, time_range, before, key in itertools.product(
        equality, ranges, (None, middle), keys
    ):
        filters = ExecutionFilters(limit=50, before_seq=before, **params, **time_range)
        read = plan_rows_read(key, filters)
        where = f"{params} {time_range} before={before} by {key!r}"
        assert read <= 1000, f"{where}: read {read} rows"


def at(seq: int) -> datetime:
    return T0 + timedelta(seconds=seq)


def test_an_item_is_answered_with_every_field_as_before(viewer_client, shuffled: Cluster) -> None:
    """The exact JSON of one item, as the console answered before its rows were read as
    plain values: field order, the 'Z' times with milliseconds, floats, booleans."""
    Execution.objects.filter(seq=300).update(
        started_at=datetime(2026, 1, 1, 0, 49, 59, 123456, tzinfo=UTC),
        finished_at=datetime(2026, 1, 1, 0, 50, 0, 654321, tzinfo=UTC),
        duration_ms=1531.25,
        attempts=2,
        cached=True,
        error="boom",
    )
    response = viewer_client.get("/api/clusters/c1/executions?limit=1")
    body = response.content.decode()
    item = Execution.objects.get(seq=300)
    assert body == (
        '{"items": [{"seq": 300, "execution_id": "e300", '
        f'"operation_id": "{item.operation_id}", "status": "{item.status}", '
        f'"duration_ms": 1531.25, "node_name": "{item.node_name}", '
        '"started_at": "2026-01-01T00:49:59.123Z", "finished_at": "2026-01-01T00:50:00.654Z", '
        '"attempts": 2, "cached": true, "error": "boom"}], "next_before_seq": 300}'
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's")
def test_on_postgresql_a_time_range_with_a_status_reads_only_rows_of_that_status(
    shuffled: Cluster,
) -> None:
    """Failures are one row in 50 of the inserted rows. With the status in the GiST index
    (migration 0009) a page of "failures until <the oldest 1 %>" or "failures in a
    900-row window" reads about the failures it returns (78 rows here, with the
    fixture's own older rows), not every row of the range (649 without the index)."""
    insert_rows(shuffled)
    middle, old = 1000 + ROWS // 2, 1000 + ROWS // 400
    for time_range in ({"until": at(old)}, {"since": at(middle - 900), "until": at(middle)}):
        filters = ExecutionFilters(limit=50, status="failure", **time_range)
        read = plan_rows_read(shuffled, filters)
        assert read <= 150, f"{time_range}: read {read} rows"
