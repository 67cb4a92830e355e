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
from tests import cluster_harness
from tests.console.runbooks.lifecycle_support import WRITE_OP, SteadyWriter
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
                    except httpx.HTTPError:
                        pass
                self.urls = ready or self.urls

    def stop(self) -> None:
        self._stop.set()


class RoutedWriter(SteadyWriter):
    """The steady writer, as a client behind a load balancer: an execution refused before
    it ran (a 503 from a draining node, a refused connection to a stopped one) is sent to
    the next serving node. Only one that no node would take counts as failed."""

    def _one(self, http: httpx.Client, url: str, attempts: int = 8) -> None:
        for attempt in range(attempts):
            try:
                answer = http.post(f"{url}/execute/{WRITE_OP['id']}")
            except httpx.ConnectError as err:
                answer, why = None, f"{url}: {err!r}"
            except httpx.HTTPError as err:  # sent, outcome unknown: a real failure
                self.failures.append(f"{url}: {err!r}")
                return
            if answer is not None and answer.status_code < 300:
                self.ok += 1
                return
            if answer is not None and answer.status_code != 503:
                self.failures.append(f"{url}: {answer.status_code} {answer.text[:200]}")
                return
            why = why if answer is None else f"{url}: 503 {answer.text[:200]}"
            if attempt == attempts - 1:
                self.failures.append(why)
                return
            self.retried += 1
            time.sleep(0.1)
            urls = [u for u in self.urls() if u != url] or self.urls()
            url = urls[attempt % len(urls)]


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
    writer = RoutedWriter(lambda: serving.urls).start()
    started = time.monotonic()

    run = request(managed, {"release": "up-2", "soakS": 3}, operator)

    assert finished(run, 300).status == "succeeded", run.error
    took = time.monotonic() - started
    writer.stop()
    serving.stop()
    order = run.params["order"]
    assert order[-1] == leader_before
    nodes = manager_for(managed)
    for node in daemon_cluster.nodes:
        assert nodes.status(node.name).release == "up-2"
        health = daemon_cluster.get(node, "/health/node").json()
        assert health["build"]["release"] == "up-2" and health["draining"] is False
    print(f"upgrade took {took:.0f}s; writer: {writer.ok} ok, {writer.retried} retried 503s")
    assert writer.ok > 100 and writer.failures == [], writer.failures[:5]

    # Then the quick rollback: every node back on the checkout, under the same writer.
    serving = Serving(daemon_cluster)
    writer = RoutedWriter(lambda: serving.urls).start()
    started = time.monotonic()
    outcome = services.request_run(managed, "rollback", {}, operator)
    assert outcome.run is not None, outcome.reasons

    assert finished(outcome.run, 300).status == "succeeded", outcome.run.error
    took = time.monotonic() - started
    writer.stop()
    serving.stop()
    assert outcome.run.params["fromRun"] == run.id
    assert all(nodes.status(n.name).release == "" for n in daemon_cluster.nodes)
    print(f"quick rollback took {took:.0f}s; writer: {writer.ok} ok, {writer.retried} retried")
    assert took <= 60 and writer.failures == [], writer.failures[:5]


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
    writer = RoutedWriter(lambda: serving.urls).start()

    run = request(managed, {"release": "crash-2", "soakS": 1, "nodeDeadlineS": 20}, operator)

    assert finished(run, 300).status == "rolled_back", run.error
    writer.stop()
    serving.stop()
    assert "this release cannot start" in run.error
    first = run.params["order"][0]
    assert f"{first} on the checkout" in run.error
    nodes = manager_for(managed)
    for node in daemon_cluster.nodes:
        state = nodes.status(node.name)
        assert state.running and state.release == "", (node.name, state)
        assert daemon_cluster.get(node, "/health/ready").status_code == 200
    print(f"writer: {writer.ok} ok, {writer.retried} retried, {len(writer.failures)} failed")
    assert writer.failures == [], writer.failures[:5]
