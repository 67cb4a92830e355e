"""Runbook runs: the row is the truth the UI shows; Celery is only transport."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

# A `cancelling` or `pausing` run still holds the cluster: its worker is finishing the
# current step. A `paused` one holds it too, with no worker: what it started (drained or
# upgraded nodes, a half-moved cluster) must not meet another run before it goes on.
ACTIVE_RUN_STATES = ("queued", "running", "cancelling", "pausing", "paused")
# A run that ended without finishing its steps can be picked up again where it stopped.
RESUMABLE_RUN_STATES = ("stale", "failed")


class RunbookRun(models.Model):
    STATES = [
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
    ]

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="runs")
    action = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=STATES, default="queued")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, help_text="last (re)queued; a resume sets it")
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    heartbeat_at = models.DateTimeField(null=True, help_text="the worker's last sign of life")
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    resumed_count = models.PositiveIntegerField(default=0)
    hold_reason = models.CharField(
        max_length=300, blank=True, help_text="why a paused run waits (e.g. awaiting promotion)"
    )
    abort_requested = models.BooleanField(
        default=False, help_text="a paused run was aborted: its worker rolls back, not on"
    )
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, help_text="when the operator approved the switch")

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
    DONE_STATES = ("succeeded", "failed", "skipped")

    run = models.ForeignKey(RunbookRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=STATES, default="pending")
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    detail = models.JSONField(default=dict)
    gates = models.JSONField(
        default=list, help_text="each gate's name, value and verdict, as last checked"
    )
    attempts = models.PositiveIntegerField(default=0, help_text="how often the step was started")

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="step_position_unique")
        ]
