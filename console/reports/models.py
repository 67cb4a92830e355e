"""What the reports need that nothing else keeps: one data-directory size per node per day,
so the weekly report can show growth (Node rows hold only the latest size)."""

from __future__ import annotations

from django.db import models


class DataDirSize(models.Model):
    node = models.ForeignKey("clusters.Node", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    data_dir_bytes = models.BigIntegerField()

    class Meta:
        ordering = ["node", "day"]
        constraints = [models.UniqueConstraint(fields=["node", "day"], name="datadir_size_day")]
