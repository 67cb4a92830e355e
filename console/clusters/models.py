"""Clusters, their nodes, chart samples, the mirrored execution history and releases."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from daemon import contract

# A row names environment variables, never values; the pattern keeps a row from naming
# SECRET_KEY or DATABASE_URL and sending it to a daemon as a bearer token (issue 14).
TOKEN_ENV_PATTERN = r"^DAEMON_[A-Z0-9_]*TOKEN[A-Z0-9_]*$"
TOKEN_ENV_RE = re.compile(TOKEN_ENV_PATTERN)
token_env_validator = RegexValidator(
    TOKEN_ENV_PATTERN, "must name a DAEMON_…TOKEN… variable, such as DAEMON_TOKEN"
)
ROLES = ("read", "operate", "admin")


class Cluster(models.Model):
    """A daemon cluster the console watches. Secrets stay out of the database: the
    daemon admin token is read from the environment variable named here."""

    name = models.SlugField(max_length=63, unique=True)
    description = models.CharField(max_length=200, blank=True)
    seed_urls = models.JSONField(default=list, help_text="HTTP URLs of known nodes")
    token_env = models.CharField(
        max_length=64, default="DAEMON_TOKEN", validators=[token_env_validator]
    )  # the admin token
    operate_token_env = models.CharField(
        max_length=64, default="DAEMON_OPERATE_TOKEN", validators=[token_env_validator]
    )
    read_token_env = models.CharField(
        max_length=64, default="DAEMON_READ_TOKEN", validators=[token_env_validator]
    )
    trusted_hosts = models.JSONField(
        default=list,
        blank=True,
        help_text="host names (a leading dot admits a domain) that may receive the tokens, "
        "besides the seed URLs' hosts",
    )
    node_manager = models.CharField(
        max_length=16, choices=[("local", "local"), ("kubernetes", "kubernetes")], default="local"
    )
    # node_manager == "kubernetes": the StatefulSet the console drives, and how to reach
    # the API server (console/runbooks/nodes/kubernetes.py). The service-account token is
    # read from the environment variable named here, like the daemon tokens.
    kube_api_url = models.CharField(max_length=200, blank=True, help_text="https://host:6443")
    kube_namespace = models.SlugField(max_length=63, blank=True)
    kube_statefulset = models.SlugField(max_length=63, blank=True)
    kube_image = models.CharField(
        max_length=200, blank=True, help_text="image repository; release R runs <repository>:R"
    )
    kube_token_env = models.CharField(
        max_length=64, default="DAEMON_KUBE_TOKEN", validators=[token_env_validator]
    )
    kube_ca_file = models.CharField(
        max_length=300, blank=True, help_text="CA bundle for the API server (empty: system CAs)"
    )
    # Observed state, updated by the collector.
    leader_name = models.CharField(max_length=63, blank=True)
    term = models.BigIntegerField(default=0)
    commit_index = models.BigIntegerField(default=0)
    has_quorum = models.BooleanField(default=False)
    cluster_size = models.PositiveIntegerField(default=0)
    replication_lag_ms = models.FloatField(null=True)
    last_polled_at = models.DateTimeField(null=True)
    feed_cursor = models.BigIntegerField(default=0, help_text="last mirrored execution seq")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def api_token(self) -> str:
        return self.token_for("admin")

    def token_for(self, role: str) -> str:
        """The least token that can do `role`: an unset read or operate variable falls
        back to the next stronger one, so a cluster with only DAEMON_TOKEN keeps working."""
        chain = {
            "read": (self.read_token_env, self.operate_token_env, self.token_env),
            "operate": (self.operate_token_env, self.token_env),
            "admin": (self.token_env,),
        }[role]
        for var in chain:
            if var and TOKEN_ENV_RE.fullmatch(var) and os.environ.get(var):
                return os.environ[var]
        return ""

    def trusts_url(self, url: str) -> bool:
        """True when `url`'s host is one configured for this cluster: a seed URL's host,
        a name under it (pod.service), a sibling of a dotted seed name, or trusted_hosts.
        Node URLs come from the daemons' answers, so a poisoned member must not get a token."""
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        if not host:
            return False
        for seed in self.seed_urls or []:
            seed_host = (urlsplit(str(seed)).hostname or "").lower().rstrip(".")
            if not seed_host:
                continue
            if host == seed_host or host.endswith("." + seed_host):
                return True
            parent = seed_host.split(".", 1)[1] if "." in seed_host else ""
            if (
                "." in parent
                and not seed_host.replace(".", "").isdigit()
                and host.endswith("." + parent)
            ):
                return True
        for entry in self.trusted_hosts or []:
            entry = str(entry).lower()
            if host == entry or (entry.startswith(".") and host.endswith(entry)):
                return True
        return False

    @property
    def fault_tolerance(self) -> int:
        reachable = self.nodes.filter(reachable=True, removed=False).count()
        return contract.fault_tolerance(self.cluster_size, reachable)


class Node(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(max_length=63)
    http_url = models.URLField(max_length=200)
    raft_address = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=16, default="unknown")
    reachable = models.BooleanField(default=False)
    removed = models.BooleanField(default=False, help_text="no longer a Raft member")
    term = models.BigIntegerField(null=True)
    commit_index = models.BigIntegerField(null=True)
    applied_index = models.BigIntegerField(null=True)
    match_index = models.BigIntegerField(null=True)
    lag_entries = models.BigIntegerField(null=True)
    lag_ms = models.FloatField(null=True)
    draining = models.BooleanField(default=False)
    version = models.CharField(max_length=64, blank=True)
    # The build the node reports (`/health/node` -> build): which release it runs.
    release = models.CharField(max_length=63, blank=True)
    build_commit = models.CharField(max_length=40, blank=True)
    code_version = models.IntegerField(null=True, help_text="state-machine version enabled")
    max_code_version = models.IntegerField(null=True, help_text="highest version it can run")
    digest = models.CharField(max_length=64, blank=True)
    data_dir_bytes = models.BigIntegerField(null=True)
    last_seen_at = models.DateTimeField(null=True, help_text="last successful poll")
    last_polled_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="node_unique")]

    def __str__(self) -> str:
        return f"{self.cluster.name}/{self.name}"


class Sample(models.Model):
    """One collector observation of a cluster, for the dashboard's charts."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="samples")
    at = models.DateTimeField(db_index=True)
    replication_lag_ms = models.FloatField(null=True)
    executions_per_s = models.FloatField(null=True)
    p95_ms = models.FloatField(null=True)
    success_rate = models.FloatField(null=True)
    total_operations = models.BigIntegerField(null=True)
    error_count = models.BigIntegerField(null=True)
    active = models.IntegerField(null=True)
    queued = models.IntegerField(null=True)
    max_disk_usage = models.FloatField(null=True, help_text="fraction 0..1, if known")

    class Meta:
        indexes = [models.Index(fields=["cluster", "at"], name="sample_cluster_at")]


class Execution(models.Model):
    """The console's copy of the cluster's execution feed: all history, searchable."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="executions")
    seq = models.BigIntegerField()
    execution_id = models.CharField(max_length=64)
    operation_id = models.CharField(max_length=128)
    status = models.CharField(max_length=16)
    duration_ms = models.FloatField()
    node_name = models.CharField(max_length=63)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    attempts = models.IntegerField(default=1)
    cached = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-seq"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "seq"], name="execution_seq_unique"),
            models.UniqueConstraint(fields=["cluster", "execution_id"], name="execution_id_unique"),
        ]
        indexes = [
            models.Index(fields=["cluster", "operation_id", "-seq"], name="exec_op"),
            # "failures of operation X": with only the single-filter indexes, a rare or
            # absent combination walked every row of X (query p95 22 ms at 1M rows;
            # 1.5 ms with this index).
            models.Index(
                fields=["cluster", "operation_id", "status", "-seq"], name="exec_op_status"
            ),
            models.Index(fields=["cluster", "status", "-seq"], name="exec_status"),
            models.Index(fields=["cluster", "node_name", "-seq"], name="exec_node"),
            # Every other combination of the history filters too (migration 0006): one
            # index per combination is what lets "X on node Y" read only its own rows,
            # newest first, however rare the combination is among X's or Y's rows.
            models.Index(
                fields=["cluster", "status", "node_name", "-seq"], name="exec_status_node"
            ),
            models.Index(
                fields=["cluster", "operation_id", "node_name", "-seq"], name="exec_op_node"
            ),
            models.Index(
                fields=["cluster", "operation_id", "status", "node_name", "-seq"],
                name="exec_op_status_node",
            ),
            models.Index(fields=["cluster", "finished_at"], name="exec_time"),
        ]


class Release(models.Model):
    """An installable build of this project (a wheel) that nodes can run.

    The wheel is kept under `RELEASES_DIR` and installed read-only into its own
    environment there; `max_code_version` is read from the installed build when it is
    verified, never typed in."""

    class Status(models.TextChoices):
        REGISTERED = "registered"  # built or uploaded, not yet proven to start
        VERIFIED = "verified"  # a scratch node started from it and reported its build
        ACTIVE = "active"  # some node runs it
        RETIRED = "retired"  # kept, but not offered for new rollouts
        YANKED = "yanked"  # must not run: refused everywhere

    class Source(models.TextChoices):
        WORKING_TREE = "working-tree"
        GIT_REF = "git-ref"
        UPLOAD = "upload"

    name = models.CharField(max_length=63, unique=True, help_text="the release's version")
    package_version = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    wheel_path = models.CharField(max_length=500)
    source = models.CharField(max_length=16, choices=Source.choices)
    source_ref = models.CharField(max_length=200, blank=True, help_text="git ref or file name")
    commit = models.CharField(max_length=40, blank=True)
    dirty = models.BooleanField(default=False, help_text="built from uncommitted changes")
    max_code_version = models.IntegerField(null=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REGISTERED)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    added_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True)
    verification = models.JSONField(default=dict, blank=True, help_text="last check's result")

    class Meta:
        ordering = ["-added_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def can_roll_out(self) -> bool:
        return self.status in (self.Status.VERIFIED, self.Status.ACTIVE)
