"""The upgrade end to end: a real worker, a real 3-node cluster under a steady writer,
real releases built from this tree (one of them patched to crash at start)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import LazySettings

from console.clusters.models import Cluster, Release
from console.runbooks import services
from console.runbooks.models import RunbookRun
from console.runbooks.nodes import manager_for
from daemon.localcluster import releases as store
from daemon.localcluster.writer import SteadyWriter, executed_ids
from tests import cluster_harness
from tests.console.runbooks.lifecycle_support import WRITE_OP
from tests.console.runbooks.test_worker import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]
ROOT = Path(__file__).resolve().parents[3]
CRASH = 'raise SystemExit("this release cannot start (a test build)")\n'


def _patched_wheel(tmp: Path, release: str, patch: str) -> store.Wheel:
    repo = tmp / "repo"
    repo.mkdir()
    store._export_tree(ROOT, None, repo)
    main = repo / "daemon" / "__main__.py"
    text = main.read_text()
    head = "from __future__ import annotations\n"
    main.write_text(text.replace(head, head + patch, 1) if head in text else patch + text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", release], check=True)
    return store.build_wheel(repo, tmp / "wheels", release=release)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, store.Wheel]:
    """A good release of this tree and one whose daemon exits at start."""
    good = store.build_wheel(ROOT, tmp_path_factory.mktemp("good"), release="up-2")
    crash = _patched_wheel(tmp_path_factory.mktemp("crash"), "crash-2", CRASH)
    return {"up-2": good, "crash-2": crash}


def registered(wheel: store.Wheel, settings: LazySettings, max_code: int) -> Release:
    """Installed where the node manager looks, and recorded as verified."""
    store.install(wheel, Path(settings.RELEASES_DIR) / "envs")
    return Release.objects.create(
        name=wheel.release, package_version="0", sha256="0" * 64, size_bytes=1,
        wheel_path="/nowhere", source="upload", status="verified", max_code_version=max_code,
    )  # fmt: skip


class Serving:
    """The URLs of nodes answering /health/ready (not draining, not stopped), refreshed
    every 0.2 s: what a load balancer in front of the cluster would send traffic to."""

    def __init__(self, cluster: cluster_harness.Cluster) -> None:
        self.cluster, self.urls = cluster, [n.url for n in cluster.nodes]
        self.leaders: list[str] = []  # each leader seen, in order (a change appends)
        self._stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        with httpx.Client(timeout=1.0) as http:
            while not self._stop.wait(0.2):
                ready = []
                for node in self.cluster.nodes:
                    try:
                        if http.get(f"{node.url}/health/ready").status_code == 200:
                            ready.append(node.url)
                            leader = http.get(f"{node.url}/health/node").json().get("leader")
                            if leader and (not self.leaders or self.leaders[-1] != leader):
                                self.leaders.append(leader)
                    except (httpx.HTTPError, ValueError):
                        pass
                self.urls = ready or self.urls

    def stop(self) -> None:
        self._stop.set()


def writer_for(serving: Serving) -> SteadyWriter:
    """The project's careful client (a refused attempt goes to the next node): 50/s."""
    writer = SteadyWriter(
        lambda: serving.urls, cluster_harness.OPERATE_TOKEN, WRITE_OP["id"], rate=50.0
    )
    writer.start()
    return writer


def assert_nothing_lost(daemon_cluster: cluster_harness.Cluster, writer: SteadyWriter) -> None:
    acknowledged = set(writer.acknowledged_ids)
    for node in daemon_cluster.nodes:
        missing = acknowledged - executed_ids(node.url, cluster_harness.ADMIN_TOKEN)
        assert not missing, f"{node.name} lacks {len(missing)} acknowledged executions"


def request(cluster: Cluster, params: dict, user: object) -> RunbookRun:
    outcome = services.request_run(cluster, "upgrade", params, user)
    assert outcome.run is not None and outcome.run.status == "queued", outcome
    return outcome.run


def max_code(daemon_cluster: cluster_harness.Cluster) -> int:
    health = daemon_cluster.get(daemon_cluster.nodes[0], "/health/node").json()
    return int(health.get("maxCodeVersion") or 0)


def test_a_rolling_upgrade_under_a_steady_writer_moves_every_node_without_a_failed_execution(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],
    operator,
) -> None:
    registered(wheels["up-2"], settings, max_code(daemon_cluster))
    leader_before = daemon_cluster.leader().name
    serving = Serving(daemon_cluster)
    writer = writer_for(serving)
    started = time.monotonic()

    run = request(managed, {"release": "up-2", "soakS": 3}, operator)

    assert finished(run, 300).status == "succeeded", run.error
    took = time.monotonic() - started
    report = writer.stop()
    serving.stop()
    order = run.params["order"]
    assert order[-1] == leader_before
    nodes = manager_for(managed)
    for node in daemon_cluster.nodes:
        assert nodes.status(node.name).release == "up-2"
        health = daemon_cluster.get(node, "/health/node").json()
        assert health["build"]["release"] == "up-2" and health["draining"] is False
    changes = len(serving.leaders) - 1
    print(f"UPGRADE 3 nodes: {took:.0f}s, leader changes {changes}, writer {report.as_json()}")
    assert report.acknowledged > 100 and report.failed == 0, report.as_json()
    assert changes <= 1, serving.leaders
    assert took <= 90
    assert_nothing_lost(daemon_cluster, writer)

    # Then the quick rollback: every node back on the checkout, under the same writer.
    serving = Serving(daemon_cluster)
    writer = writer_for(serving)
    started = time.monotonic()
    outcome = services.request_run(managed, "rollback", {}, operator)
    assert outcome.run is not None, outcome.reasons

    assert finished(outcome.run, 300).status == "succeeded", outcome.run.error
    took = time.monotonic() - started
    report = writer.stop()
    serving.stop()
    assert outcome.run.params["fromRun"] == run.id
    assert all(nodes.status(n.name).release == "" for n in daemon_cluster.nodes)
    print(f"QUICK ROLLBACK 3 nodes: {took:.0f}s, writer {report.as_json()}")
    assert took <= 60 and report.failed == 0, report.as_json()
    assert_nothing_lost(daemon_cluster, writer)


def test_a_release_that_crashes_at_start_is_rolled_back_and_the_run_says_why(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],
    operator,
) -> None:
    registered(wheels["crash-2"], settings, max_code(daemon_cluster))
    serving = Serving(daemon_cluster)
    writer = writer_for(serving)

    run = request(managed, {"release": "crash-2", "soakS": 1, "nodeDeadlineS": 20}, operator)

    assert finished(run, 300).status == "rolled_back", run.error
    report = writer.stop()
    serving.stop()
    assert "this release cannot start" in run.error
    first = run.params["order"][0]
    assert f"{first} on the checkout" in run.error
    nodes = manager_for(managed)
    for node in daemon_cluster.nodes:
        state = nodes.status(node.name)
        assert state.running and state.release == "", (node.name, state)
        assert daemon_cluster.get(node, "/health/ready").status_code == 200
    print(f"CRASHING RELEASE rolled back: writer {report.as_json()}")
    assert report.failed == 0, report.as_json()
    assert_nothing_lost(daemon_cluster, writer)
