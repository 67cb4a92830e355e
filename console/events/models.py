"""The event journal: an append-only table that is the audit log, the history and the live feed."""

from __future__ import annotations

from django.db import models


class Event(models.Model):
    # BigAutoField ids are monotonic: a client resumes with "everything after id N".
    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    cluster = models.ForeignKey(
        "clusters.Cluster", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    actor = models.CharField(max_length=150, help_text="username, or collector/worker/system")
    kind = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["cluster", "id"], name="event_cluster_id"),
            models.Index(fields=["kind", "id"], name="event_kind_id"),
            models.Index(fields=["actor", "id"], name="event_actor_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.kind} by {self.actor}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("events are append-only")
        super().save(*args, **kwargs)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "cluster": self.cluster.name if self.cluster_id else None,
            "actor": self.actor,
            "kind": self.kind,
            "payload": self.payload,
        }
