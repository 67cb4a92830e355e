"""The blue-green switch end to end: a real worker, a real 3-node cluster under a steady
writer, real releases built from this tree (one of them patched to crash at start)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import LazySettings

from console.clusters.models import Cluster
from console.runbooks import records, services
from console.runbooks.models import RunbookRun
from console.runbooks.nodes import manager_for
from daemon.localcluster import Layout
from daemon.localcluster import releases as store
from daemon.localcluster.writer import SteadyWriter, executed_ids
from tests import cluster_harness
from tests.conftest import wait_for
from tests.console.runbooks.lifecycle_support import WRITE_OP
from tests.console.runbooks.test_upgrade_live import max_code, registered, wheels  # noqa: F401
from tests.console.runbooks.test_worker import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]


class LayoutServing:
    """The URLs of the layout's nodes answering /health/ready, refreshed every 0.2 s: a
    load balancer that learns of new nodes as they are added (the layout on disk)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.urls = [spec.url for spec in Layout.load(root).nodes]
        self._stop = threading.Event()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        with httpx.Client(timeout=1.0) as http:
            while not self._stop.wait(0.2):
                try:
                    specs = Layout.load(self.root).nodes
                except Exception:  # rewritten under us: the next round reads it
                    continue
                ready = []
                for spec in specs:
                    try:
                        if http.get(f"{spec.url}/health/ready").status_code == 200:
                            ready.append(spec.url)
                    except httpx.HTTPError:
                        pass
                self.urls = ready or self.urls

    def stop(self) -> None:
        self._stop.set()


def start_writer(daemon_cluster: cluster_harness.Cluster) -> tuple[LayoutServing, SteadyWriter]:
    serving = LayoutServing(daemon_cluster.layout.root)
    writer = SteadyWriter(
        lambda: serving.urls, cluster_harness.OPERATE_TOKEN, WRITE_OP["id"], rate=50.0
    )
    writer.start()
    return serving, writer


def request(cluster: Cluster, params: dict, user: object) -> RunbookRun:
    outcome = services.request_run(cluster, "blue_green", params, user)
    assert outcome.run is not None and outcome.run.status == "queued", outcome
    return outcome.run


def nodes_url(cluster: Cluster, names: list[str]) -> list[str]:
    nodes = manager_for(cluster)
    return [nodes.status(name).url for name in names]


def membership(url: str) -> list[str]:
    headers = {"Authorization": f"Bearer {cluster_harness.ADMIN_TOKEN}"}
    view = httpx.get(f"{url}/health/cluster", headers=headers, timeout=5).json()
    return sorted(node["name"] for node in view["nodes"])


def test_a_blue_green_switch_3_to_3_under_a_steady_writer_fails_no_execution_and_keeps_old_data(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],  # noqa: F811
    operator,
) -> None:
    registered(wheels["up-2"], settings, max_code(daemon_cluster))
    old = sorted(n.name for n in daemon_cluster.nodes)
    serving, writer = start_writer(daemon_cluster)
    started = time.monotonic()

    run = request(managed, {"release": "up-2", "soakS": 2, "successWindowS": 5}, operator)

    assert finished(run, 400).status == "succeeded", run.error
    took = time.monotonic() - started
    report = writer.stop()
    serving.stop()
    new = run.params["new"]
    assert run.params["old"] == old and not set(new) & set(old)
    # The console now finds the cluster through the new members (the old ones are gone).
    managed.refresh_from_db()
    assert sorted(managed.seed_urls) == sorted(nodes_url(managed, new))
    nodes = manager_for(managed)
    assert sorted(nodes.names()) == sorted(new)
    for name in new:
        state = nodes.status(name)
        assert state.running and state.release == "up-2", state
        assert membership(state.url) == sorted(new)
    kept = [s.detail["dataKeptAt"] for s in run.steps.all() if "dataKeptAt" in s.detail]
    assert len(kept) == 3
    for path in kept:
        assert any((Path(path) / "data").iterdir()), f"{path} holds no Raft data"
    print(f"BLUE-GREEN 3 -> 3: {took:.0f}s, writer {report.as_json()}")
    assert report.acknowledged > 100 and report.failed == 0, report.as_json()
    acknowledged = set(writer.acknowledged_ids)
    for name in new:
        missing = acknowledged - executed_ids(nodes.status(name).url, cluster_harness.ADMIN_TOKEN)
        assert not missing, f"{name} lacks {len(missing)} acknowledged executions"


def test_a_release_that_crashes_at_start_is_rolled_back_with_the_old_members_serving(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],  # noqa: F811
    operator,
) -> None:
    registered(wheels["crash-2"], settings, max_code(daemon_cluster))
    old = sorted(n.name for n in daemon_cluster.nodes)
    serving, writer = start_writer(daemon_cluster)

    run = request(managed, {"release": "crash-2", "soakS": 1, "nodeDeadlineS": 20}, operator)

    assert finished(run, 300).status == "rolled_back", run.error
    report = writer.stop()
    serving.stop()
    assert "this release cannot start" in run.error
    nodes = manager_for(managed)
    assert sorted(nodes.names()) == old, "the new member was not forgotten"
    for node in daemon_cluster.nodes:
        state = nodes.status(node.name)
        assert state.running and state.release == "", (node.name, state)
        assert daemon_cluster.get(node, "/health/ready").status_code == 200
        assert membership(node.url) == old
    print(f"BLUE-GREEN crashing release rolled back: writer {report.as_json()}")
    assert report.failed == 0, report.as_json()
    acknowledged = set(writer.acknowledged_ids)
    for node in daemon_cluster.nodes:
        missing = acknowledged - executed_ids(node.url, cluster_harness.ADMIN_TOKEN)
        assert not missing, f"{node.name} lacks {len(missing)} acknowledged executions"


def test_an_abort_after_the_switch_puts_leadership_back_on_an_old_member_and_removes_the_new(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],  # noqa: F811
    operator,
) -> None:
    registered(wheels["up-2"], settings, max_code(daemon_cluster))
    old = sorted(n.name for n in daemon_cluster.nodes)
    serving, writer = start_writer(daemon_cluster)
    run = request(managed, {"release": "up-2", "soakS": 1, "successWindowS": 60}, operator)
    gate = "success gate with a new member leading"

    def switched() -> bool:
        step = run.steps.get(name=gate)
        return bool(step.gates) and all(g["ok"] for g in step.gates)

    wait_for(switched, 300, "a new member leading, the success gate being held")
    services.cancel_run(run.id, operator)

    assert finished(run, 300).status == "rolled_back", run.error
    report = writer.stop()
    serving.stop()
    names = [s.name for s in run.steps.order_by("position")]
    assert "rollback: put leadership back on an old member" in names
    back = run.steps.get(name="rollback: put leadership back on an old member")
    assert back.detail["leader"] in old and back.detail["changed"] is True, back.detail
    nodes = manager_for(managed)
    assert sorted(nodes.names()) == old
    for node in daemon_cluster.nodes:
        assert membership(node.url) == old
        assert daemon_cluster.get(node, "/health/ready").status_code == 200
    print(f"BLUE-GREEN aborted after the switch, rolled back: writer {report.as_json()}")
    assert report.failed == 0, report.as_json()
    acknowledged = set(writer.acknowledged_ids)
    for node in daemon_cluster.nodes:
        missing = acknowledged - executed_ids(node.url, cluster_harness.ADMIN_TOKEN)
        assert not missing, f"{node.name} lacks {len(missing)} acknowledged executions"


def test_a_worker_killed_while_a_new_member_joins_goes_stale_and_the_resumed_run_finishes(
    managed: Cluster,
    start_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],  # noqa: F811
    operator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered(wheels["up-2"], settings, max_code(daemon_cluster))
    first_worker = start_worker()
    serving, writer = start_writer(daemon_cluster)
    run = request(managed, {"release": "up-2", "soakS": 1, "successWindowS": 3}, operator)
    second = f"add {run.params['new'][1]} on release up-2"
    wait_for(
        lambda: run.steps.filter(name=second, status="running").exists(), 300, "the second add"
    )
    first_worker.kill()
    monkeypatch.setenv("RUNBOOK_STALE_AFTER_S", "2")
    wait_for(
        lambda: records.reap_stale_runs() or RunbookRun.objects.get(id=run.id).status == "stale",
        30,
        "the reaper",
    )
    run.refresh_from_db()
    assert run.status == "stale"  # never reported as succeeded half-done

    start_worker()
    services.resume_run(run.id, operator)

    assert finished(run, 400).status == "succeeded", run.error
    report = writer.stop()
    serving.stop()
    steps = {s.name: s for s in run.steps.all()}
    assert steps[f"add {run.params['new'][0]} on release up-2"].attempts == 1  # not repeated
    assert steps[second].attempts == 2
    managed.refresh_from_db()  # its seed URLs now name the new members
    nodes = manager_for(managed)
    assert sorted(nodes.names()) == sorted(run.params["new"])
    for name in run.params["new"]:
        assert membership(nodes.status(name).url) == sorted(run.params["new"])
    print(f"BLUE-GREEN resumed after a killed worker: writer {report.as_json()}")
    assert report.failed == 0, report.as_json()
