"""The issue's browser test: log in, see 3 nodes and the leader, kill the leader's
process, and see the new leader and the alert appear without a reload.

Everything is real: a 3-process daemon cluster, the collector as its own process,
daphne serving the console, and Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from console.clusters.models import Cluster as ClusterRow
from tests import cluster_harness
from tests.browser.support import PASSWORD, browser_page, log_in
from tests.conftest import REPO_ROOT, ConsoleServer, database_url, embedded_defaults_env

pytestmark = [pytest.mark.browser, pytest.mark.cluster]
TOKEN_ENV = "DAEMON_TOKEN_BROWSER_TEST"
# Election (~1-1.5 s) + a collector poll + the push; generous for a loaded CI machine.
LIVE_TIMEOUT_MS = 20_000


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[cluster_harness.Cluster]:
    cluster = cluster_harness.Cluster(tmp_path / "daemons", size=3)
    try:
        yield cluster.start()
    finally:
        cluster.stop_all()


@pytest.fixture
def collector(daemons: cluster_harness.Cluster, transactional_db: None, tmp_path: Path):
    from django.db import connection

    ClusterRow.objects.create(
        name="local", seed_urls=[n.url for n in daemons.nodes], token_env=TOKEN_ENV
    )
    env = embedded_defaults_env(
        DATABASE_URL=database_url(connection.settings_dict),
        SECRET_KEY=settings.SECRET_KEY,
        CONSOLE_VAR_DIR=str(tmp_path / "collector_var"),
        PYTHONUNBUFFERED="1",
        # The runbook's `for: 2m` becomes 1.2 s, so the alert fires within the test.
        ALERT_FOR_SCALE="0.01",
        **{TOKEN_ENV: cluster_harness.ADMIN_TOKEN},
    )
    log_path = tmp_path / "collector.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "collect", "--no-local", "--interval", "1"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_dashboard_shows_the_new_leader_and_the_alert_after_a_leader_kill(
    console_server: ConsoleServer,
    chromium_path: Path,
    daemons: cluster_harness.Cluster,
    collector: subprocess.Popen,
) -> None:
    from playwright.sync_api import expect

    get_user_model().objects.create_user("oncall", password=PASSWORD)
    with browser_page(chromium_path) as page:
        log_in(page, console_server.url, "oncall")
        expect(page).to_have_url(f"{console_server.url}/")

        for node in daemons.nodes:
            row = page.get_by_test_id(f"node-row-{node.name}")
            expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        leader = daemons.leader()
        expect(page.get_by_test_id("leader-name")).to_contain_text(leader.name)
        page.evaluate("window.__noReload = true")

        daemons.kill(leader)
        leader_name = page.get_by_test_id("leader-name")
        expect(leader_name).not_to_contain_text(leader.name, timeout=LIVE_TIMEOUT_MS)
        expect(leader_name).to_contain_text(daemons.leader().name, timeout=LIVE_TIMEOUT_MS)
        alert = page.get_by_test_id("alert-strip").locator('[data-rule="cluster_size"]')
        expect(alert).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        # Still the same page: nothing reloaded it.
        assert page.evaluate("window.__noReload") is True
