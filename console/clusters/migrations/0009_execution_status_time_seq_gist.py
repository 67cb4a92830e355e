"""A GiST index on (cluster, status, finished_at, seq): time ranges filtered by status.

0007's GiST on (cluster, finished_at, seq) pages a time range by seq, but a status filter
on top is checked row by row: "failures in this hour" read the whole hour, and "failures
before last month" read every older row until 50 failures turned up (5-7 ms at 10M rows,
the two history cases over 20 ms through daphne; BENCHMARKS, issue 16). With the status
in the index its rows are the only ones read (1M rows: 6.5 -> 3.2 ms at p50).

PostgreSQL only and built CONCURRENTLY, as 0007 (see there): a valid index of this name
built by hand ahead of the upgrade is kept, an interrupted build's leftover is rebuilt.
"""

from django.db import migrations

from console.clusters.pg_indexes import create_gist_concurrently, drop_concurrently

INDEX = "exec_status_time_seq_gist"


def create(apps, schema_editor) -> None:
    create_gist_concurrently(
        schema_editor, INDEX, "clusters_execution", "cluster_id, status, finished_at, seq"
    )


def drop(apps, schema_editor) -> None:
    drop_concurrently(schema_editor, INDEX)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("clusters", "0008_execution_filter_statistics")]

    operations = [migrations.RunPython(create, drop, atomic=False, elidable=False)]
