"""/api/backups: roles, bad input and missing files answer 4xx in one line (no cluster
processes needed: nothing here reaches a daemon)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from console.accounts.models import ApiToken
from console.backups.models import Backup
from console.clusters.models import Cluster
from daemon import backup
from tests.console.alerts.support import make_user
from tests.daemon.test_backup_files import _state

pytestmark = pytest.mark.django_db


def bearer(role: str) -> dict[str, str]:
    _, raw = ApiToken.issue(make_user(f"{role}-user", role), "test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def stored(settings, tmp_path: Path) -> Backup:
    settings.BACKUPS_DIR = tmp_path / "backups"
    settings.BACKUPS_DIR.mkdir()
    manifest, body = backup.encode(_state(), "unrdf-daemon-1", 40, 2, 0)
    (settings.BACKUPS_DIR / "local-1.bak").write_bytes(body)
    cluster = Cluster.objects.create(name="local", seed_urls=["http://127.0.0.1:9"])
    return Backup.objects.create(
        cluster=cluster,
        taken_by="test",
        source_node="unrdf-daemon-1",
        manifest=manifest,
        size_bytes=len(body),
        location="local-1.bak",
    )


def test_a_viewer_lists_backups_but_cannot_take_verify_or_restore(
    client: Client, stored: Backup
) -> None:
    headers = bearer("viewer")
    listed = client.get("/api/backups/?cluster=local", **headers).json()
    assert [b["id"] for b in listed] == [stored.id]
    assert listed[0]["total_executions"] == 30 and listed[0]["verification"] == "pending"
    take = client.post(
        "/api/backups/", {"cluster": "local"}, content_type="application/json", **headers
    )
    assert take.status_code == 403
    assert client.post(f"/api/backups/{stored.id}/verify", **headers).status_code == 403


def test_only_an_admin_downloads_or_restores(client: Client, stored: Backup) -> None:
    operator = bearer("operator")
    assert client.get(f"/api/backups/{stored.id}/download", **operator).status_code == 403
    restore = client.post(
        f"/api/backups/{stored.id}/restore",
        {"confirm": "local"},
        content_type="application/json",
        **operator,
    )
    assert restore.status_code == 403
    admin = bearer("admin")
    response = client.get(f"/api/backups/{stored.id}/download", **admin)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(backup.MAGIC)


def test_unknown_backups_clusters_and_missing_files_answer_404(
    client: Client, stored: Backup, settings
) -> None:
    admin = bearer("admin")
    assert client.get("/api/backups/?cluster=nope", **admin).status_code == 404
    missing = client.get("/api/backups/999/download", **admin)
    assert missing.status_code == 404 and missing.json()["detail"] == "no backup #999"
    (Path(settings.BACKUPS_DIR) / stored.location).unlink()
    gone = client.get(f"/api/backups/{stored.id}/download", **admin)
    assert gone.status_code == 404 and "missing" in gone.json()["detail"]


def test_a_restore_without_the_confirmation_field_is_a_422_naming_it(
    client: Client, stored: Backup
) -> None:
    response = client.post(
        f"/api/backups/{stored.id}/restore", {}, content_type="application/json", **bearer("admin")
    )
    assert response.status_code == 422
    assert "confirm" in str(response.json())


def test_an_admin_changes_the_schedule_and_bad_values_are_422(client: Client, stored) -> None:
    admin, viewer = bearer("admin"), bearer("viewer")
    assert (
        client.get("/api/backups/schedule?cluster=local", **viewer).json()["interval_hours"] == 24
    )
    body = {"enabled": True, "interval_hours": 6, "keep_last": 3, "keep_weekly": 2}
    put = client.put(
        "/api/backups/schedule?cluster=local", body, content_type="application/json", **admin
    )
    assert put.status_code == 200 and put.json() == body
    assert (
        client.put(
            "/api/backups/schedule?cluster=local", body, content_type="application/json", **viewer
        ).status_code
        == 403
    )
    bad = client.put(
        "/api/backups/schedule?cluster=local",
        {**body, "interval_hours": 0},
        content_type="application/json",
        **admin,
    )
    assert bad.status_code == 422 and "interval_hours" in str(bad.json())
