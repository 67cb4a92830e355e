"""The backup actions against a real 3-node cluster: take, verify, restore, and refusals.

Runs are requested as the pages and API request them, then executed in this process by
the worker's own code (`runner.execute`), so each test sees every step's record.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from console.alerts.models import Alert
from console.backups import alerting, procedures, retention, tasks
from console.backups.models import Backup, BackupSchedule
from console.events.models import Event
from console.runbooks import runner, services
from console.runbooks.models import RunbookRun
from daemon.localcluster import nodes_of, stop_nodes

pytestmark = pytest.mark.django_db


def _run(cluster, action: str, params: dict, user) -> object:
    outcome = services.request_run(cluster, action, params, user)
    assert outcome.ok, outcome.reasons
    runner.execute(outcome.run.id)
    outcome.run.refresh_from_db()
    return outcome.run


def _work(daemon_cluster, count: int) -> None:
    node = daemon_cluster.nodes[0]
    daemon_cluster.define(node, {"id": "job", "handler": {"kind": "noop"}})
    for _ in range(count):
        assert daemon_cluster.post(node, "/execute/job").is_success


def test_a_backup_run_takes_a_backup_from_a_follower_and_verifies_it(
    console_cluster, daemon_cluster, operator, backup_settings: Path
) -> None:
    _work(daemon_cluster, 5)
    run = _run(console_cluster, "backup", {}, operator)
    assert run.status == "succeeded", run.error
    row = Backup.objects.get()
    assert row.verification == "verified", row.verification_result
    assert row.source_node != daemon_cluster.leader().name
    assert row.manifest["totalExecutions"] == 5 and row.manifest["operations"] == 1
    assert row.verify_seconds > 0
    assert row.verification_result["summary"]["contentDigest"] == row.manifest["contentDigest"]
    path = backup_settings / row.location
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(backup_settings.stat().st_mode & 0o777) == "0o700"
    kinds = list(Event.objects.filter(kind__startswith="backup.").values_list("kind", flat=True))
    assert kinds == ["backup.taken", "backup.verified"]


def test_a_corrupted_backup_fails_verification_and_raises_an_alert(
    console_cluster, daemon_cluster, operator, backup_settings: Path
) -> None:
    _work(daemon_cluster, 3)
    source = daemon_cluster.nodes[1]
    row = procedures.take(console_cluster, source.url, source.name, "test")
    path = backup_settings / row.location
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x10
    path.write_bytes(bytes(raw))
    run = _run(console_cluster, "verify_backup", {"backup_id": row.id}, operator)
    assert run.status == "failed"
    row.refresh_from_db()
    assert row.verification == "failed"
    assert "SHA-256" in row.verification_result["error"]
    alert = Alert.objects.get(cluster=console_cluster, rule="backup_verification")
    assert alert.state == "firing" and alert.severity == "critical"


def test_restore_brings_every_node_back_to_the_manifest_after_later_writes(
    console_cluster, daemon_cluster, operator, admin, backup_settings: Path
) -> None:
    _work(daemon_cluster, 4)
    run = _run(console_cluster, "backup", {"verify": False}, operator)
    assert run.status == "succeeded", run.error
    row = Backup.objects.get()
    _work(daemon_cluster, 3)  # written after the backup: the restore must undo these
    refused = services.request_run(
        console_cluster, "restore", {"backup_id": row.id, "confirm": "nope"}, admin
    )
    assert not refused.ok and "type the cluster's name (local)" in refused.reasons[0]
    try:
        run = _run(console_cluster, "restore", {"backup_id": row.id, "confirm": "local"}, admin)
        assert run.status == "succeeded", run.error
        steps = list(run.steps.order_by("position").values_list("name", "status"))
        assert [s for _, s in steps] == ["succeeded"] * 6
        for node in daemon_cluster.nodes:
            metrics = daemon_cluster.get(node, "/metrics").json()
            assert metrics["totalOperations"] == 4
        check = run.steps.get(position=6).detail
        assert set(check["contentDigest"]) == {n.name for n in daemon_cluster.nodes}
    finally:
        stop_nodes(nodes_of(daemon_cluster.layout))


def test_retention_keeps_the_last_n_and_one_verified_per_week() -> None:
    now = timezone.now()

    def b(i: int, days: float, state: str = "verified") -> Backup:
        return Backup(id=i, created_at=now - dt.timedelta(days=days), verification=state)

    backups = [b(1, 0), b(2, 1), b(3, 2), b(4, 8), b(5, 9), b(6, 15, "failed"), b(7, 16), b(8, 40)]
    keep = retention.to_keep(backups, keep_last=2, keep_weekly=3, now=now)
    # last 2: 1, 2; week 0: 1; week 1: 4 (newest verified); week 2: 7 (6 failed); 8 too old
    assert keep == {1, 2, 4, 7}


def test_no_verified_backup_within_the_schedule_raises_the_age_alert(console_cluster) -> None:
    schedule = BackupSchedule.objects.create(cluster=console_cluster, interval_hours=24)
    BackupSchedule.objects.filter(pk=schedule.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=30)
    )
    alerting.evaluate(console_cluster)
    alert = Alert.objects.get(cluster=console_cluster, rule="backup_age")
    assert alert.state == "firing" and alert.severity == "warning"
    assert "Hours since the last verified backup 30" in alert.summary


def test_the_schedule_asks_for_one_backup_when_due_and_stays_quiet_while_busy(
    console_cluster, backup_settings: Path
) -> None:
    tasks.tick()
    tasks.tick()  # the first run is still queued: no second run, no refused run on record
    [run] = RunbookRun.objects.all()
    assert (run.action, run.status, run.requested_by.username) == ("backup", "queued", "schedule")
    assert BackupSchedule.objects.get(cluster=console_cluster).interval_hours == 24
