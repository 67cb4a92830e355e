# Where a Kubernetes-managed cluster's StatefulSet is and how to reach its API server
# (the Kubernetes node manager, issue 13).

import django.core.validators
from django.db import migrations, models

PATTERN = r"^DAEMON_[A-Z0-9_]*TOKEN[A-Z0-9_]*$"
MESSAGE = "must name a DAEMON_…TOKEN… variable, such as DAEMON_TOKEN"


class Migration(migrations.Migration):
    dependencies = [("clusters", "0004_token_scopes")]

    operations = [
        migrations.AddField(
            model_name="cluster",
            name="kube_api_url",
            field=models.CharField(blank=True, help_text="https://host:6443", max_length=200),
        ),
        migrations.AddField(
            model_name="cluster",
            name="kube_namespace",
            field=models.SlugField(blank=True, max_length=63),
        ),
        migrations.AddField(
            model_name="cluster",
            name="kube_statefulset",
            field=models.SlugField(blank=True, max_length=63),
        ),
        migrations.AddField(
            model_name="cluster",
            name="kube_image",
            field=models.CharField(
                blank=True,
                help_text="image repository; release R runs <repository>:R",
                max_length=200,
            ),
        ),
        migrations.AddField(
            model_name="cluster",
            name="kube_token_env",
            field=models.CharField(
                default="DAEMON_KUBE_TOKEN",
                max_length=64,
                validators=[django.core.validators.RegexValidator(PATTERN, MESSAGE)],
            ),
        ),
        migrations.AddField(
            model_name="cluster",
            name="kube_ca_file",
            field=models.CharField(
                blank=True,
                help_text="CA bundle for the API server (empty: system CAs)",
                max_length=300,
            ),
        ),
    ]
