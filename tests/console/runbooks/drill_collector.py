"""The collector as its own process, for the drills: it journals the events a drill
expects and mirrors the feed whose copy a drill compares with the daemon's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from console.clusters.models import Cluster
from tests import cluster_harness
from tests.conftest import REPO_ROOT, database_url, embedded_defaults_env, wait_for
from tests.console.runbooks.conftest import TOKEN_ENV


@pytest.fixture
def collector(managed: Cluster, tmp_path: Path) -> Iterator[subprocess.Popen]:
    from django.db import connection

    env = embedded_defaults_env(
        DATABASE_URL=database_url(connection.settings_dict),
        SECRET_KEY=settings.SECRET_KEY,
        CONSOLE_VAR_DIR=str(tmp_path / "collector_var"),
        PYTHONUNBUFFERED="1",
        **{TOKEN_ENV: cluster_harness.ADMIN_TOKEN},
    )
    log_path = tmp_path / "collector.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "collect", "--no-local", "--interval", "0.5"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # Polled once: the drill's journal window starts after the first observations.
        wait_for(
            lambda: Cluster.objects.get(pk=managed.pk).last_polled_at is not None,
            60,
            "the collector's first poll",
        )
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
