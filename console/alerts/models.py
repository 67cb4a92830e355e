"""Alerts: one row per firing episode of a rule on a cluster."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

ACTIVE_STATES = ("pending", "firing")


class Alert(models.Model):
    STATES = [("pending", "pending"), ("firing", "firing"), ("resolved", "resolved")]
    SEVERITIES = [("warning", "warning"), ("critical", "critical")]

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="alerts")
    rule = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, choices=SEVERITIES)
    state = models.CharField(max_length=16, choices=STATES, default="pending")
    value = models.FloatField(null=True)
    threshold = models.FloatField(null=True)
    summary = models.CharField(max_length=200)
    pending_since = models.DateTimeField()
    fired_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True)
    ack_comment = models.TextField(blank=True)
    silenced_until = models.DateTimeField(null=True)
    silenced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-pending_since"]
        constraints = [
            # At most one open episode per rule and cluster, whoever evaluates.
            models.UniqueConstraint(
                fields=["cluster", "rule"],
                condition=Q(state__in=ACTIVE_STATES),
                name="one_active_alert_per_rule",
            )
        ]
        indexes = [models.Index(fields=["cluster", "state"], name="alert_cluster_state")]

    def __str__(self) -> str:
        return f"{self.rule} {self.state} on {self.cluster_id}"
