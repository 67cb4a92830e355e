# Tokens may expire (issue 14, point 8).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_role_groups")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, help_text="none: until revoked", null=True),
        ),
    ]
