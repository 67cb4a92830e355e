"""Indexes for the history filters' remaining combinations (status+node, operation+node,
operation+status+node), so each combination is one index range read newest first.

CREATE INDEX CONCURRENTLY on PostgreSQL: at 10M mirrored rows each index takes about a
minute to build, and a plain CREATE INDEX holds a SHARE lock that blocks the
collector's mirror writes for that long; CONCURRENTLY lets writes through (it needs a
migration outside a transaction, hence atomic = False). A build interrupted half way
leaves an INVALID index of the same name, so that is dropped first to make a re-run
succeed; a valid one (built by hand ahead of the upgrade) is kept. Other databases (SQLite, the embedded default) get a plain CREATE INDEX.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                [self.index.name],
            )
            found = cursor.fetchone()
        if found and found[0]:
            return None  # built already (by hand, ahead of the upgrade)
        if found:
            schema_editor.execute(f'DROP INDEX CONCURRENTLY "{self.index.name}"')
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("clusters", "0005_kubernetes_manager")]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="execution",
            index=models.Index(
                fields=["cluster", "status", "node_name", "-seq"], name="exec_status_node"
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="execution",
            index=models.Index(
                fields=["cluster", "operation_id", "node_name", "-seq"], name="exec_op_node"
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="execution",
            index=models.Index(
                fields=["cluster", "operation_id", "status", "node_name", "-seq"],
                name="exec_op_status_node",
            ),
        ),
    ]
