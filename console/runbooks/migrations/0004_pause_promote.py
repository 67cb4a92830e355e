# Pausing and paused runs hold the cluster (the one-run constraint covers them); a paused
# run's reason, an abort of a paused run, and who promoted a run past its code-version switch.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("clusters", "0005_kubernetes_manager"),
        ("runbooks", "0003_rollback_states"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="runbookrun",
            name="one_active_run_per_cluster",
        ),
        migrations.AddField(
            model_name="runbookrun",
            name="abort_requested",
            field=models.BooleanField(
                default=False, help_text="a paused run was aborted: its worker rolls back, not on"
            ),
        ),
        migrations.AddField(
            model_name="runbookrun",
            name="hold_reason",
            field=models.CharField(
                blank=True,
                help_text="why a paused run waits (e.g. awaiting promotion)",
                max_length=300,
            ),
        ),
        migrations.AddField(
            model_name="runbookrun",
            name="promoted_at",
            field=models.DateTimeField(
                help_text="when the operator approved the switch", null=True
            ),
        ),
        migrations.AddField(
            model_name="runbookrun",
            name="promoted_by",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="runbookrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "queued"),
                    ("running", "running"),
                    ("cancelling", "cancelling"),
                    ("pausing", "pausing"),
                    ("paused", "paused"),
                    ("succeeded", "succeeded"),
                    ("failed", "failed"),
                    ("stale", "stale"),
                    ("refused", "refused"),
                    ("cancelled", "cancelled"),
                    ("rolled_back", "rolled back"),
                    ("needs_operator", "needs an operator"),
                ],
                default="queued",
                max_length=16,
            ),
        ),
        migrations.AddConstraint(
            model_name="runbookrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("status__in", ("queued", "running", "cancelling", "pausing", "paused"))
                ),
                fields=("cluster",),
                name="one_active_run_per_cluster",
            ),
        ),
    ]
