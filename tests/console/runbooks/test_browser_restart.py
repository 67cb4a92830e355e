"""In a real browser: an operator clicks "Restart" on a node of a real cluster and
watches the run finish on the dashboard without a reload (a real worker does it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from console.clusters.models import Cluster
from console.runbooks.models import RunbookRun
from daemon.localcluster import ProcessHandle
from tests import cluster_harness
from tests.browser.support import browser_page, log_in
from tests.conftest import (
    REPO_ROOT,
    ConsoleServer,
    database_url,
    embedded_defaults_env,
    free_port,
    port_answers,
    wait_for,
)
from tests.console.runbooks.conftest import TOKEN_ENV, Broker

pytestmark = [pytest.mark.browser, pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def managing_console(
    managed: Cluster, isolated_broker: Broker, tmp_path: Path
) -> Iterator[ConsoleServer]:
    """daphne on the test database that knows the cluster's layout and token, and queues
    runs where the test's worker reads."""
    from django.db import connection

    port = free_port()
    env = embedded_defaults_env(
        DATABASE_URL=database_url(connection.settings_dict),
        SECRET_KEY=settings.SECRET_KEY,
        CONSOLE_VAR_DIR=str(isolated_broker.var_dir),
        RUNBOOK_CELERY_QUEUE=isolated_broker.queue,
        PYTHONUNBUFFERED="1",
    )
    for key in ("LOCAL_CLUSTER_DIR", "RELEASES_DIR", "REDIS_URL", "CELERY_BROKER_URL"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    env[TOKEN_ENV] = cluster_harness.ADMIN_TOKEN
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    server = ProcessHandle(
        "daphne", [*argv, "console.asgi:application"], tmp_path / "daphne.log",
        cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    server.start()
    try:
        wait_for(lambda: port_answers(port) or not server.running(), 30, "daphne to listen")
        if not server.running():
            pytest.fail(f"daphne exited at start:\n{server.log_path.read_text()}")
        yield ConsoleServer(url=f"http://127.0.0.1:{port}", port=port)
    finally:
        server.stop(grace_s=10)


def test_an_operator_clicks_restart_and_sees_the_run_finish_without_a_reload(
    managed: Cluster,
    managing_console: ConsoleServer,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    chromium_path: Path,
    operator,
) -> None:
    from playwright.sync_api import expect

    node = next(n for n in daemon_cluster.nodes if n is not daemon_cluster.leader())
    pid_before = node.process.pid

    with browser_page(chromium_path) as page:
        log_in(page, managing_console.url, "olivia", next_path=f"/clusters/{managed.name}/")
        expect(page.get_by_test_id("runbook-actions")).to_be_visible()
        page.evaluate("window.loadedOnce = true")  # gone if the page reloads
        page.on("dialog", lambda dialog: dialog.accept())

        form = page.get_by_test_id(f"runbook-restart_node-{node.name}")
        form.get_by_role("button", name="Run").click()

        runs = page.get_by_test_id("runbook-runs")
        expect(runs.locator("li.run").first).to_have_attribute(
            "data-status", "succeeded", timeout=120_000
        )
        expect(runs).to_contain_text("6/6")
        assert page.evaluate("window.loadedOnce") is True
    run = RunbookRun.objects.get()
    assert (run.action, run.status, run.params) == (
        "restart_node",
        "succeeded",
        {"node": node.name, "release": None},
    )
    wait_for(lambda: node.process.pid not in (None, pid_before), 10, "the node's new process")
