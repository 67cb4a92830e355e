"""Backups against a real daemon cluster registered in the console (the runbooks'
fixtures), with the backup storage and the local cluster's layout in the test's dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.console.runbooks.conftest import (  # noqa: F401 - fixtures
    console_cluster,
    daemon_cluster,
    operator,
    user_with_role,
)


@pytest.fixture
def backup_settings(settings, tmp_path: Path, daemon_cluster) -> Path:  # noqa: F811
    settings.BACKUPS_DIR = tmp_path / "backups"
    settings.BACKUPS_LOCAL_CLUSTER_DIR = daemon_cluster.layout.root
    return settings.BACKUPS_DIR


@pytest.fixture
def admin(db: None) -> object:
    return user_with_role("ada", "admin")
