"""`manage.py collect` as operators run it: registers the local cluster, runs as its own
process, stops cleanly on SIGTERM; alert evaluation failures never stop it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from console.clusters.models import Cluster, Node
from console.collector import collector
from console.collector.collector_config import CollectorConfig
from console.collector.local import ensure_local_cluster
from console.events.models import Event
from console.runbooks.models import RunbookRun
from tests.cluster_harness import ADMIN_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster
from tests.conftest import REPO_ROOT, database_url, embedded_defaults_env, free_port, wait_for
from tests.console.collector.support import tick


@pytest.mark.django_db
def test_collect_once_registers_the_local_cluster_and_polls_it(settings) -> None:
    settings.DAEMON_HTTP_PORT = free_port()  # nothing listens there: every node is down
    call_command("collect", "--once")
    local = Cluster.objects.get(name="local")
    port = settings.DAEMON_HTTP_PORT
    assert local.seed_urls == [f"http://127.0.0.1:{port + i}" for i in range(3)]
    assert local.token_env == "DAEMON_TOKEN" and local.last_polled_at is not None
    call_command("collect", "--once")
    assert Cluster.objects.filter(name="local").count() == 1


@pytest.mark.django_db
def test_the_local_cluster_is_left_out_when_asked(settings) -> None:
    call_command("collect", "--once", "--no-local")
    settings.CONSOLE_LOCAL_CLUSTER = False
    call_command("collect", "--once")
    assert not Cluster.objects.exists()


@pytest.mark.django_db
def test_an_existing_local_cluster_is_not_overwritten() -> None:
    Cluster.objects.create(name="local", seed_urls=["http://10.0.0.1:8080"])
    cluster, created = ensure_local_cluster()
    assert not created and cluster.seed_urls == ["http://10.0.0.1:8080"]


@pytest.mark.django_db
def test_an_unknown_cluster_or_interval_is_refused_in_one_line() -> None:
    with pytest.raises(CommandError, match="no cluster named 'nope'"):
        call_command("collect", "--once", "--no-local", "--cluster", "nope")
    with pytest.raises(CommandError, match="--interval must be a positive"):
        call_command("collect", "--once", "--no-local", "--interval", "0")


@pytest.mark.django_db
def test_a_failing_alert_evaluation_is_logged_and_the_poll_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(cluster: Cluster, now: object) -> None:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(collector, "evaluate_cluster", broken)
    cluster = Cluster.objects.create(name="c")
    collector.evaluate_alerts(cluster, timezone.now())
    assert "alert evaluation failed for cluster c" in caplog.text


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_collect_runs_as_its_own_process_and_stops_cleanly_on_sigterm(
    daemons: DaemonCluster, tmp_path: Path
) -> None:
    Cluster.objects.create(name="test", seed_urls=[n.url for n in daemons.nodes])
    connection.ensure_connection()
    env = embedded_defaults_env(
        DATABASE_URL=database_url(connection.settings_dict),
        DAEMON_TOKEN=ADMIN_TOKEN,
        CONSOLE_VAR_DIR=str(tmp_path / "var"),
    )
    argv = [sys.executable, "manage.py", "collect", "--no-local", "--interval", "0.2"]
    log_path = tmp_path / "collect.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: Node.objects.filter(reachable=True).count() == 3 or proc.poll() is not None,
            30,
            "the collector to record 3 reachable nodes",
        )
        assert proc.poll() is None, log_path.read_text()
        first = Cluster.objects.get(name="test").last_polled_at
        wait_for(
            lambda: Cluster.objects.get(name="test").last_polled_at > first, 10, "a later poll"
        )
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log_path.read_text()
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.django_db
def test_every_tick_reaps_a_run_whose_worker_went_silent() -> None:
    """The collector, not a page view, turns a dead worker's run `stale`."""
    long_ago = timezone.now() - timedelta(minutes=5)
    cluster = Cluster.objects.create(name="quiet")
    run = RunbookRun.objects.create(
        cluster=cluster, action="drain", status="running", started_at=long_ago,
        heartbeat_at=long_ago,
    )  # fmt: skip
    # A collector watching no cluster: the tick polls nothing, so only the reaping acts.
    tick(collector.Collector(CollectorConfig(), cluster_name="none-such"))
    run.refresh_from_db()
    assert run.status == "stale"
    assert Event.objects.filter(kind="run.finished", payload__status="stale").count() == 1
