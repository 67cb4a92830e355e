"""Extended statistics on the history filters' columns (PostgreSQL only).

With a time range the planner chooses between reading the filter combination's index
and reading the time range; it needs the combination's size to choose. Assuming the
columns independent, it took "op-10 failures" for 1/20 x 1/50 of the rows when that
operation failed ten times as often, and read all of them instead of the range's few
hundred. The multi-column MCV list and dependencies give it the real frequencies.
ANALYZE samples a fixed number of rows (seconds at 10M rows), so it runs here too.
"""

from django.db import migrations

NAME = "exec_filter_stats"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE STATISTICS IF NOT EXISTS {NAME} (mcv, dependencies) "
        "ON cluster_id, operation_id, status, node_name FROM clusters_execution"
    )
    schema_editor.execute("ANALYZE clusters_execution")


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [("clusters", "0007_execution_time_seq_gist")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
