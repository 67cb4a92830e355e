"""From the backups page in a real browser (daphne + chromium + a Celery worker + a real
3-node cluster): "Back up now" takes a backup and the page shows it verified."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from console.backups.models import Backup
from daemon.localcluster import ProcessHandle
from tests import cluster_harness
from tests.browser.support import browser_page, log_in
from tests.conftest import (
    REPO_ROOT,
    database_url,
    embedded_defaults_env,
    free_port,
    port_answers,
    wait_for,
)
from tests.console.runbooks.conftest import (  # noqa: F401 - fixtures
    TOKEN_ENV,
    celery_worker,
    isolated_broker,
    start_worker,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server_on_the_workers_broker(isolated_broker, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    """daphne whose runs reach the test's worker: the same var dir (the filesystem
    broker's folders, the backup storage) and queue."""
    port = free_port()
    env = embedded_defaults_env(
        DATABASE_URL=database_url(connection.settings_dict),
        SECRET_KEY=settings.SECRET_KEY,
        CONSOLE_VAR_DIR=str(isolated_broker.var_dir),
        RUNBOOK_CELERY_QUEUE=isolated_broker.queue,
        PYTHONUNBUFFERED="1",
    )
    # The worker's broker (RabbitMQ or Redis in CI), or daphne's runs never reach it.
    for key in ("REDIS_URL", "CELERY_BROKER_URL"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    env[TOKEN_ENV] = cluster_harness.ADMIN_TOKEN
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    server = ProcessHandle(
        "daphne",
        [*argv, "console.asgi:application"],
        tmp_path / "daphne.log",
        cwd=REPO_ROOT,
        env=env,
    )
    server.start()
    try:
        wait_for(lambda: port_answers(port) or not server.running(), 30, "daphne to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(grace_s=10)


def test_back_up_now_from_the_page_shows_the_backup_verified(
    server_on_the_workers_broker: str,
    celery_worker,  # noqa: F811
    console_cluster,
    daemon_cluster,
    operator,
    chromium_path: Path,
    isolated_broker,  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    node = daemon_cluster.nodes[0]
    daemon_cluster.define(node, {"id": "job", "handler": {"kind": "noop"}})
    assert daemon_cluster.post(node, "/execute/job").is_success
    url = server_on_the_workers_broker
    with browser_page(chromium_path, timeout_ms=90_000) as page:
        log_in(page, url, "olivia", next_path="/clusters/local/")
        page.get_by_role("link", name="Backups").click()
        page.get_by_test_id("backup-take").click()
        row = page.get_by_test_id("backup-row").first
        expect(row).to_have_attribute("data-verification", "verified", timeout=90_000)
        expect(row).to_contain_text("verified in")
    backup = Backup.objects.get()
    assert backup.manifest["totalExecutions"] == 1
    assert (isolated_broker.var_dir / "backups" / backup.location).exists()
