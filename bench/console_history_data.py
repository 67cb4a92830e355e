"""The history benchmark's rows: N mirrored executions of one cluster in PostgreSQL.

Rows: seq 1..N, operation `op-<seq % 20>`, status `failure` every 50th else `success`,
node `unrdf-daemon-<seq % 3>`, finished `T0 + seq` seconds. Generated with
INSERT ... SELECT generate_series in batches of a million, with the table's secondary
indexes and its unique/foreign-key constraints dropped first and re-created after:
building a b-tree once from sorted input is several times faster than maintaining it
row by row (the random `execution_id` keys overflow shared_buffers at 10M rows), and
the foreign key is checked once by a join instead of once per row. Then VACUUM
ANALYZE, as autovacuum would leave a table of that age (visibility map, statistics).

A kept database (`--reuse`) is used again when it already holds exactly these rows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TABLE = "clusters_execution"
BATCH = 1_000_000
INSERT_SQL = """
INSERT INTO clusters_execution (cluster_id, seq, execution_id, operation_id, status,
    duration_ms, node_name, started_at, finished_at, attempts, cached, error)
SELECT %s, s, 'x' || s, 'op-' || (s %% 20),
       CASE WHEN s %% 50 = 0 THEN 'failure' ELSE 'success' END, 1.0,
       'unrdf-daemon-' || (s %% 3), %s + s * interval '1 second',
       %s + s * interval '1 second', 1, false, ''
FROM generate_series(%s, %s) AS s
"""
CONSTRAINTS_SQL = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY conname
"""
# Plain indexes only: the primary key stays, constraint-backed ones go with their constraint.
INDEXES_SQL = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.tablename = %s AND i.indexname NOT IN (
    SELECT conindid::regclass::text FROM pg_constraint WHERE conrelid = %s::regclass
) ORDER BY i.indexname
"""


def finished_at(seq: int) -> datetime:
    """When the generated row `seq` finished (time-range cases pick their bounds here)."""
    from datetime import timedelta

    return T0 + timedelta(seconds=seq)


def holds_rows(cluster_id: int, rows: int) -> bool:
    """True when the table is exactly what load_rows(cluster_id, rows) leaves."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT min(seq), max(seq), count(*) FROM {TABLE} WHERE cluster_id = %s",
            [cluster_id],
        )
        low, high, count = cursor.fetchone()
    return (low, high, count) == (1, rows, rows)


def load_rows(cluster_id: int, rows: int) -> dict[str, Any]:
    """Generate the rows; returns the seconds each phase took (and the table's size)."""
    from django.db import connection

    timings: dict[str, Any] = {}
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        cursor.execute(CONSTRAINTS_SQL, [TABLE])
        constraints = cursor.fetchall()
        cursor.execute(INDEXES_SQL, [TABLE, TABLE])
        indexes = cursor.fetchall()
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for first in range(1, rows + 1, BATCH):
            last = min(rows, first + BATCH - 1)
            cursor.execute(INSERT_SQL, [cluster_id, T0, T0, first, last])
        timings["insertS"] = round(time.monotonic() - started, 1)
        mark = time.monotonic()
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        timings["indexesS"] = round(time.monotonic() - mark, 1)
        mark = time.monotonic()
        cursor.execute(f"VACUUM ANALYZE {TABLE}")
        timings["vacuumAnalyzeS"] = round(time.monotonic() - mark, 1)
        cursor.execute(
            "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", [TABLE, TABLE]
        )
        table_bytes, index_bytes = cursor.fetchone()
    timings["totalS"] = round(time.monotonic() - started, 1)
    timings["tableMiB"] = round(table_bytes / 2**20)
    timings["indexesMiB"] = round(index_bytes / 2**20)
    return timings
