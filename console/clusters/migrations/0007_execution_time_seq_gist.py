"""A GiST index on (cluster, finished_at, seq) for the history API's time ranges.

The API pages by seq, newest first, also within a time range. No b-tree serves both a
range on finished_at and an order on seq: walking seq down from the newest row read
10M rows for "until <a month ago>" over 10M rows (13 s). A GiST index (btree_gist's
operator classes) bounds each page by both columns, and its nearest-neighbour scan
returns the range's rows in `seq <-> bound` order, which below `bound` is newest first
(console/dashboard/history.py, newest_by_seq).

PostgreSQL only: the index is not in Execution.Meta (Django's GistIndex would need
django.contrib.postgres and break the SQLite default), and elsewhere this migration
does nothing. Built CONCURRENTLY (the collector's mirror writes keep going during the
minutes it takes at 10M rows), after dropping an INVALID leftover of an interrupted
build; a valid index of that name (built by hand ahead of the upgrade) is kept. btree_gist is a trusted extension: the database's owner may create it.
"""

from django.db import migrations

from console.clusters.pg_indexes import create_gist_concurrently, drop_concurrently

INDEX = "exec_time_seq_gist"


def create(apps, schema_editor) -> None:
    create_gist_concurrently(
        schema_editor, INDEX, "clusters_execution", "cluster_id, finished_at, seq"
    )


def drop(apps, schema_editor) -> None:
    drop_concurrently(schema_editor, INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("clusters", "0006_execution_combination_indexes")]

    operations = [migrations.RunPython(create, drop, atomic=False, elidable=False)]
