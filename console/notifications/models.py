"""Channels (where messages go), Deliveries (one message to one channel, exactly once)
and the journal cursor the dispatcher claims."""

from __future__ import annotations

import os

from django.core.validators import RegexValidator
from django.db import models

# Channels may only read variables with this prefix: an admin naming SECRET_KEY or
# DAEMON_TOKEN as a "webhook URL" would otherwise post the console's secrets anywhere.
SECRET_ENV_PREFIX = "NOTIFY_"
secret_env_name = RegexValidator(
    rf"^{SECRET_ENV_PREFIX}[A-Z0-9_]{{1,56}}$",
    f"must be an environment variable name starting with {SECRET_ENV_PREFIX} "
    "(capitals, digits, underscores)",
)

KINDS = [
    ("slack", "Slack-compatible webhook"),
    ("pagerduty", "PagerDuty Events v2"),
    ("email", "e-mail"),
]
# The runbook's escalation table: critical pages, warning goes to chat, info and the
# scheduled reports are e-mailed. A channel's routes start from its kind's line.
ROUTES = ("critical", "warning", "info", "report")
DEFAULT_ROUTES = {"pagerduty": ["critical"], "slack": ["warning"], "email": ["info", "report"]}
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


class Channel(models.Model):
    name = models.SlugField(max_length=63, unique=True)
    kind = models.CharField(max_length=16, choices=KINDS)
    cluster = models.ForeignKey(
        "clusters.Cluster",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="only this cluster's messages; empty: every cluster",
    )
    routes = models.JSONField(
        default=list, help_text="severities sent: critical/warning/info/report"
    )
    secret_env = models.CharField(
        max_length=64,
        blank=True,
        validators=[secret_env_name],
        help_text="env var holding the webhook URL (slack), routing key (pagerduty) "
        "or SMTP password (email)",
    )
    url = models.URLField(blank=True, help_text="pagerduty: the Events v2 endpoint")
    recipients = models.CharField(max_length=500, blank=True, help_text="email: comma-separated")
    quiet_start_hour = models.PositiveSmallIntegerField(null=True, blank=True)
    quiet_end_hour = models.PositiveSmallIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    failures_in_a_row = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def secret(self) -> str:
        """Read at send time from the environment; never stored in the database."""
        return os.environ.get(self.secret_env, "") if self.secret_env else ""

    @property
    def recipient_list(self) -> list[str]:
        return [r.strip() for r in self.recipients.split(",") if r.strip()]


class Delivery(models.Model):
    """One message for one channel. `key` names the message (`event:<id>`,
    `repeat:<alert>:<n>`, `report:<name>:<cluster>:<period>`, `test:<uuid>`); the unique
    (channel, key) makes every message reach each channel at most once, whoever plans it."""

    STATES = [
        ("pending", "pending"),
        ("sending", "sending"),
        ("sent", "sent"),
        ("failed", "failed"),
    ]
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    key = models.CharField(max_length=120)
    severity = models.CharField(max_length=16)
    event = models.ForeignKey(
        "events.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    alert_id = models.BigIntegerField(null=True, blank=True)
    cluster_name = models.CharField(max_length=63, blank=True)
    payload = models.JSONField(default=dict, help_text="what to build the message from")
    status = models.CharField(max_length=16, choices=STATES, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="quiet hours end")
    enqueued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "key"], name="delivery_once_per_channel")
        ]
        indexes = [models.Index(fields=["status", "enqueued_at"], name="delivery_status")]


class Cursor(models.Model):
    """The last journal id the dispatcher has planned; moved only by a conditional
    UPDATE (from the value read), so two dispatchers never plan the same batch twice."""

    name = models.CharField(max_length=32, primary_key=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
