"""Upgrade controls end to end: a real worker, a real 3-node cluster, real releases built
from this tree (one adding a replicated method at ver=1, so it supports code version 1).

Pause and resume between steps, abort of a paused run (it rolls back), the backup taken
first (and a failed backup stopping the run before any node is touched), the code-version
switch waiting for promotion and the quick rollback refused after it, and the progress
deadline rolling a run back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import LazySettings

from console.backups.models import Backup
from console.clusters.models import Cluster, Release
from console.events.models import Event
from console.runbooks import services
from console.runbooks.models import RunbookRun
from console.runbooks.nodes import manager_for
from daemon.localcluster import releases as store
from tests import cluster_harness
from tests.conftest import wait_for
from tests.console.runbooks.conftest import Broker
from tests.console.runbooks.test_upgrade_live import ROOT, registered, request
from tests.console.runbooks.test_worker import FINAL, finished
from tests.daemon.test_mixed_versions import patched_tree

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]
SWITCH = "switch the code version to 1 (waits for an operator to promote the run)"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, store.Wheel]:
    """A release of this tree, and one that supports code version 1."""
    same = store.build_wheel(ROOT, tmp_path_factory.mktemp("same"), release="up-2")
    tmp = tmp_path_factory.mktemp("cv")
    raised = store.build_wheel(patched_tree(tmp), tmp / "wheels", release="cv-2")
    return {"up-2": same, "cv-2": raised}


def reaches(run: RunbookRun, wanted: set[str], timeout_s: float = 300) -> RunbookRun:
    def there() -> bool:
        run.refresh_from_db()
        return run.status in wanted | set(FINAL)

    wait_for(there, timeout_s, f"run #{run.id} to be {' or '.join(sorted(wanted))}")
    return run


def step_started(run: RunbookRun, name: str, timeout_s: float = 300) -> None:
    wait_for(
        lambda: (
            run.steps.filter(name=name).exclude(status="pending").exists()
            or RunbookRun.objects.get(id=run.id).status in FINAL
        ),
        timeout_s,
        f"step {name!r} of run #{run.id} to start",
    )


def code_versions(daemon_cluster: cluster_harness.Cluster) -> set[int]:
    return {
        daemon_cluster.get(node, "/admin/code-version").json()["codeVersion"]
        for node in daemon_cluster.nodes
    }


def kinds(run: RunbookRun) -> list[str]:
    events = Event.objects.filter(payload__run_id=run.id).order_by("id")
    return [e.kind for e in events if not e.kind.startswith("step.")]


def test_an_upgrade_raising_the_code_version_backs_up_first_waits_for_promotion_then_switches(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],
    operator,
) -> None:
    registered(wheels["cv-2"], settings, max_code=1)

    run = request(managed, {"release": "cv-2", "soakS": 1}, operator)

    assert reaches(run, {"paused"}).status == "paused", run.error
    assert run.hold_reason.startswith("awaiting promotion: step"), run.hold_reason
    steps = list(run.steps.order_by("position"))
    assert (steps[-1].name, steps[-1].status) == (SWITCH, "pending")
    assert all(s.status == "succeeded" for s in steps[:-1])
    backup = Backup.objects.get(id=steps[0].detail["backup_id"])
    assert backup.cluster_id == managed.id and backup.size_bytes > 0
    nodes = manager_for(managed)
    assert {nodes.status(n.name).release for n in daemon_cluster.nodes} == {"cv-2"}
    assert code_versions(daemon_cluster) == {0}  # every node is new; nothing switched yet
    # Paused, it still holds the cluster; a resume is no promotion.
    other = services.request_run(managed, "snapshot", {"node": "all"}, operator)
    assert not other.ok and f"(run #{run.id})" in other.reasons[0], other.reasons
    with pytest.raises(services.NotNow, match="promote it to go on past that step"):
        services.resume_run(run.id, operator)

    services.promote_run(run.id, operator)

    assert finished(run, 120).status == "succeeded", run.error
    switch = run.steps.get(name=SWITCH)
    assert switch.detail["codeVersion"] == 1 and switch.detail["rollbackSafe"] is False
    assert code_versions(daemon_cluster) == {1}
    assert run.promoted_by == operator
    assert kinds(run) == [
        "run.requested", "run.started", "run.paused", "run.promoted", "run.started",
        "run.finished",
    ]  # fmt: skip
    refused = services.request_run(managed, "rollback", {}, operator)
    assert not refused.ok
    reasons = " ".join(refused.reasons)
    assert "switched to state-machine code version 1" in reasons, reasons
    assert "restore from a backup" in reasons


def test_an_upgrade_paused_twice_resumes_where_it_stopped_and_an_abort_while_paused_rolls_back(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],
    operator,
) -> None:
    registered(wheels["up-2"], settings, max_code=0)
    run = request(managed, {"release": "up-2", "soakS": 1}, operator)
    first, second, _ = RunbookRun.objects.get(id=run.id).params["order"]

    step_started(run, f"start {first} on release up-2")
    services.pause_run(run.id, operator)

    assert reaches(run, {"paused"}).status == "paused", run.error
    started = run.steps.get(name=f"start {first} on release up-2")
    assert started.status == "succeeded"  # the step under way was finished, not cut
    assert (started.detail["node"], started.detail["phase"]) == (first, "start")
    assert not run.steps.filter(status="running").exists()
    waiting = run.steps.filter(status="pending").order_by("position").first()
    assert waiting.position > started.position
    assert run.hold_reason == f"paused by olivia before step {waiting.position} ({waiting.name})"
    assert manager_for(managed).status(first).release == "up-2"

    services.resume_run(run.id, operator)
    step_started(run, f"stop {second}")
    services.pause_run(run.id, operator)
    assert reaches(run, {"paused"}).status == "paused", run.error
    services.abort_run(run.id, operator)

    assert finished(run, 300).status == "rolled_back", run.error
    assert "cancelled before step" in run.error
    nodes = manager_for(managed)
    for node in daemon_cluster.nodes:
        state = nodes.status(node.name)
        assert state.running and state.release == "", (node.name, state)
    planned = run.steps.exclude(name__startswith="rollback: ")
    assert max(planned.values_list("attempts", flat=True)) == 1  # no step was repeated
    assert kinds(run) == [
        "run.requested", "run.started", "run.pause_requested", "run.paused", "run.resumed",
        "run.started", "run.pause_requested", "run.paused", "run.abort_requested",
        "run.started", "run.rolling_back", "run.finished",
    ]  # fmt: skip


def test_an_upgrade_past_its_progress_deadline_rolls_back_with_that_reason(
    managed: Cluster,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    wheels: dict[str, store.Wheel],
    operator,
) -> None:
    registered(wheels["up-2"], settings, max_code=0)
    started = time.monotonic()

    # The first node's soak (300 s) cannot finish within the run's 40 s.
    run = request(managed, {"release": "up-2", "soakS": 300, "progressDeadlineS": 40}, operator)

    assert finished(run, 300).status == "rolled_back", run.error
    assert "the progress deadline (40 s) passed" in run.error, run.error
    assert time.monotonic() - started < 200  # not the soak's 300 s
    nodes = manager_for(managed)
    assert {nodes.status(n.name).release for n in daemon_cluster.nodes} == {""}


def test_a_failed_backup_stops_the_upgrade_before_any_node_is_touched(
    managed: Cluster,
    isolated_broker: Broker,
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    operator,
) -> None:
    # The worker's backup storage is a file, not a directory: a real write failure.
    # With a real broker (CI's RabbitMQ) nothing else has made the worker's var dir yet.
    isolated_broker.var_dir.mkdir(parents=True, exist_ok=True)
    Path(isolated_broker.var_dir / "backups").write_text("not a directory")
    Release.objects.create(
        name="up-3", package_version="0", sha256="0" * 64, size_bytes=1, wheel_path="/nowhere",
        source="upload", status="verified", max_code_version=0,
    )  # fmt: skip
    nodes = manager_for(managed)
    pids = {n.name: nodes.status(n.name).pid for n in daemon_cluster.nodes}

    run = request(managed, {"release": "up-3"}, operator)

    assert finished(run).status == "failed", run.error
    steps = list(run.steps.order_by("position"))
    assert steps[0].status == "failed" and "the backup failed" in steps[0].detail["error"]
    assert {s.status for s in steps[1:]} == {"skipped"}
    assert {n.name: nodes.status(n.name).pid for n in daemon_cluster.nodes} == pids
    assert not Backup.objects.exists()
