# Two final states for runs that undo themselves: rolled_back and needs_operator.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runbooks", "0002_cancel_resume_gates")]

    operations = [
        migrations.AlterField(
            model_name="runbookrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "queued"),
                    ("running", "running"),
                    ("cancelling", "cancelling"),
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
    ]
