"""Indexes built by migrations on PostgreSQL only, CONCURRENTLY (the collector's mirror
writes keep going during the minutes they take at 10M rows). Not in the models' Meta:
Django's GistIndex needs django.contrib.postgres and would break the SQLite default."""

from __future__ import annotations

from typing import Any


def create_gist_concurrently(schema_editor: Any, name: str, table: str, columns: str) -> None:
    """Build a btree_gist index; keep a valid one of that name (built by hand ahead of the
    upgrade), rebuild an interrupted build's INVALID leftover. Nothing elsewhere."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name])
        found = cursor.fetchone()
    if found and found[0]:
        return
    if found:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY {name}")
    schema_editor.execute(f"CREATE INDEX CONCURRENTLY {name} ON {table} USING gist ({columns})")


def drop_concurrently(schema_editor: Any, name: str) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
