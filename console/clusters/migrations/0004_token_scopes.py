# Separate operate/read token variables, a DAEMON_…TOKEN… pattern for all three, and
# the hosts that may receive them (issue 14, points 2 and 11).

import django.core.validators
from django.db import migrations, models

PATTERN = r"^DAEMON_[A-Z0-9_]*TOKEN[A-Z0-9_]*$"
MESSAGE = "must name a DAEMON_…TOKEN… variable, such as DAEMON_TOKEN"


def validator() -> django.core.validators.RegexValidator:
    return django.core.validators.RegexValidator(PATTERN, MESSAGE)


class Migration(migrations.Migration):
    dependencies = [("clusters", "0003_releases")]

    operations = [
        migrations.AlterField(
            model_name="cluster",
            name="token_env",
            field=models.CharField(default="DAEMON_TOKEN", max_length=64, validators=[validator()]),
        ),
        migrations.AddField(
            model_name="cluster",
            name="operate_token_env",
            field=models.CharField(
                default="DAEMON_OPERATE_TOKEN", max_length=64, validators=[validator()]
            ),
        ),
        migrations.AddField(
            model_name="cluster",
            name="read_token_env",
            field=models.CharField(
                default="DAEMON_READ_TOKEN", max_length=64, validators=[validator()]
            ),
        ),
        migrations.AddField(
            model_name="cluster",
            name="trusted_hosts",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="host names (a leading dot admits a domain) that may receive the "
                "tokens, besides the seed URLs' hosts",
            ),
        ),
    ]
