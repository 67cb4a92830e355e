"""A backup of a cluster's replicated state, and each cluster's backup schedule."""

from __future__ import annotations

from django.db import models

from console.clusters.models import Cluster

VERIFICATION_STATES = ("pending", "verifying", "verified", "failed")


class Backup(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="backups")
    created_at = models.DateTimeField(auto_now_add=True)
    taken_by = models.CharField(max_length=150, help_text="a username, or 'schedule'")
    source_node = models.CharField(max_length=63)
    manifest = models.JSONField(default=dict)
    size_bytes = models.BigIntegerField(default=0)
    location = models.CharField(max_length=255, help_text="the storage's key for the file")
    verification = models.CharField(
        max_length=16, choices=[(s, s) for s in VERIFICATION_STATES], default="pending"
    )
    verified_at = models.DateTimeField(null=True)
    verify_seconds = models.FloatField(null=True)
    verification_result = models.JSONField(default=dict)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["cluster", "-created_at"])]

    def as_dict(self) -> dict:
        m = self.manifest
        return {
            "id": self.id,
            "cluster": self.cluster.name,
            "created_at": self.created_at,
            "taken_by": self.taken_by,
            "source_node": self.source_node,
            "size_bytes": self.size_bytes,
            "applied_index": m.get("appliedIndex"),
            "total_executions": m.get("totalExecutions"),
            "operations": m.get("operations"),
            "digest": m.get("digest"),
            "verification": self.verification,
            "verified_at": self.verified_at,
            "verify_seconds": self.verify_seconds,
            "verification_result": self.verification_result,
            "manifest": m,
        }


class BackupSchedule(models.Model):
    """Periodic backups of one cluster and how many are kept (see retention.py)."""

    cluster = models.OneToOneField(
        Cluster, on_delete=models.CASCADE, related_name="backup_schedule"
    )
    enabled = models.BooleanField(default=True)
    interval_hours = models.PositiveIntegerField(default=24)
    keep_last = models.PositiveIntegerField(default=7)
    keep_weekly = models.PositiveIntegerField(default=4, help_text="one per week, M weeks")
    created_at = models.DateTimeField(auto_now_add=True)
