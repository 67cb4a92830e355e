"""Runbook runs: the row is the truth the UI shows; Celery is only transport."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

ACTIVE_RUN_STATES = ("queued", "running")


class RunbookRun(models.Model):
    STATES = [
        ("queued", "queued"),
        ("running", "running"),
        ("succeeded", "succeeded"),
        ("failed", "failed"),
        ("stale", "stale"),
        ("refused", "refused"),
    ]

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="runs")
    action = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=STATES, default="queued")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    heartbeat_at = models.DateTimeField(null=True, help_text="the worker's last sign of life")
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One run at a time per cluster, enforced by the database, not by hope.
            models.UniqueConstraint(
                fields=["cluster"],
                condition=Q(status__in=ACTIVE_RUN_STATES),
                name="one_active_run_per_cluster",
            )
        ]

    def __str__(self) -> str:
        return f"run #{self.id} {self.action} ({self.status})"


class RunbookStep(models.Model):
    STATES = [
        ("pending", "pending"),
        ("running", "running"),
        ("succeeded", "succeeded"),
        ("failed", "failed"),
        ("skipped", "skipped"),
    ]

    run = models.ForeignKey(RunbookRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=STATES, default="pending")
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    detail = models.JSONField(default=dict)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="step_position_unique")
        ]
