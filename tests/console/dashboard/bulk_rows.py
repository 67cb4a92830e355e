"""Loading a million execution rows quickly in the PostgreSQL tests.

Inserted into the indexed table, a million rows took 220-280 s on a CI machine: PostgreSQL
kept two GiST and several B-tree indexes up to date row by row. Dropping the table's own
indexes, inserting, then building each index once (as pg_restore does) gives the same
indexes, with the same names and definitions the migrations made, in a fraction of that.
Indexes that back a constraint (the primary key, unique constraints) stay."""

from __future__ import annotations

from typing import Any


def insert_then_index(cursor: Any, table: str, sql: str, params: list[Any]) -> None:
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = %s AND i.schemaname = current_schema()
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        [table],
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    # Django's foreign keys are deferred to the commit, and PostgreSQL builds no index
    # on a table with checks pending: check these rows' keys now instead.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(sql, params)
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    for _, definition in indexes:
        cursor.execute(definition)
    cursor.execute(f"ANALYZE {table}")
