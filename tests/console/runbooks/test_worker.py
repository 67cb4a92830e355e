"""Runbook runs end to end: a real Celery worker process against a real daemon cluster."""

from __future__ import annotations

import threading

import httpx
import pytest

from console.clusters.models import Cluster
from console.events.models import Event
from console.runbooks import services
from console.runbooks.models import RunbookRun
from tests import cluster_harness
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]

FINAL = (
    "succeeded", "failed", "stale", "refused", "cancelled", "rolled_back", "needs_operator"
)  # fmt: skip


def finished(run: RunbookRun, timeout_s: float = 60) -> RunbookRun:
    def done() -> bool:
        run.refresh_from_db()
        return run.status in FINAL

    wait_for(done, timeout_s, f"run #{run.id} ({run.action}) to finish")
    return run


def run_events(run: RunbookRun) -> list[tuple]:
    """The run's journal, as (kind, position, status) in order."""
    return [
        (e.kind, e.payload.get("position"), e.payload.get("status"))
        for e in Event.objects.filter(payload__run_id=run.id).order_by("id")
    ]


def test_snapshot_of_all_nodes_records_every_step_in_order(
    celery_worker, console_cluster: Cluster, operator
) -> None:
    run = services.request_run(console_cluster, "snapshot", {"node": "all"}, operator).run

    assert finished(run).status == "succeeded", run.error
    steps = list(run.steps.order_by("position"))
    assert [s.name for s in steps] == [f"snapshot unrdf-daemon-{i}" for i in range(3)]
    assert all(s.status == "succeeded" and s.detail["status"] == "compacted" for s in steps)
    moments = [t for s in steps for t in (s.started_at, s.finished_at)]
    assert moments == sorted(moments)  # each step started after the one before it ended
    assert run.started_at <= moments[0] and moments[-1] <= run.finished_at
    assert run_events(run) == [
        ("run.requested", None, None),
        ("run.started", None, None),
        *[
            event
            for position in (1, 2, 3)
            for event in (
                ("step.started", position, "running"),
                ("step.finished", position, "succeeded"),
            )
        ],
        ("run.finished", None, "succeeded"),
    ]
    assert Event.objects.get(kind="run.started").actor == "worker"


def test_drain_then_undrain_a_node(
    celery_worker,
    console_cluster: Cluster,
    daemon_cluster: cluster_harness.Cluster,
    operator,
) -> None:
    node = daemon_cluster.nodes[2]

    drain = services.request_run(console_cluster, "drain", {"node": node.name}, operator).run
    assert finished(drain).status == "succeeded", drain.error
    ready = daemon_cluster.get(node, "/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (503, "draining")
    assert [s.status for s in drain.steps.all()] == ["succeeded"] * 3

    undrain = services.request_run(console_cluster, "undrain", {"node": node.name}, operator).run
    assert finished(undrain).status == "succeeded", undrain.error
    assert daemon_cluster.get(node, "/health/ready").status_code == 200


def test_transfer_leadership_moves_the_leader_to_the_target(
    celery_worker,
    console_cluster: Cluster,
    daemon_cluster: cluster_harness.Cluster,
    operator,
) -> None:
    leader = daemon_cluster.leader()
    target = next(n for n in daemon_cluster.nodes if n is not leader)

    run = services.request_run(
        console_cluster, "transfer_leader", {"target": target.name}, operator
    ).run

    assert finished(run).status == "succeeded", run.error
    assert daemon_cluster.leader().name == target.name
    confirm = run.steps.get(position=2)
    assert confirm.detail["leader"] == target.name


def test_a_worker_killed_mid_run_goes_stale_and_a_new_worker_resumes_it_without_repeating(
    start_worker,
    console_cluster: Cluster,
    daemon_cluster: cluster_harness.Cluster,
    operator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first_worker = start_worker()
    node = daemon_cluster.nodes[1]
    # A long execution on the node keeps the drain waiting in its second step.
    slow = {"id": "slow", "name": "Slow", "handler": {"kind": "sleep", "ms": 8000}}
    slow["timeoutMs"] = 30000
    assert daemon_cluster.define(node, slow).status_code in (200, 201)
    execution = threading.Thread(
        target=lambda: httpx.post(
            f"{node.url}/execute/slow",
            headers={"Authorization": f"Bearer {cluster_harness.OPERATE_TOKEN}"},
            timeout=60,
        ),
        daemon=True,
    )
    execution.start()
    wait_for(lambda: daemon_cluster.get(node, "/queue").json()["active"] == 1, 10, "the execution")
    run = services.request_run(console_cluster, "drain", {"node": node.name}, operator).run

    def waiting_on_the_node() -> bool:
        return run.steps.filter(position=2, status="running").exists()

    wait_for(waiting_on_the_node, 30, "the drain to wait on the running execution")
    first_worker.kill()
    run.refresh_from_db()
    assert run.status == "running"  # nobody has noticed yet

    monkeypatch.setenv("RUNBOOK_STALE_AFTER_S", "2")

    def reaped() -> bool:
        services.reap_stale_runs()  # what the collector does each tick
        run.refresh_from_db()
        return run.status != "running"

    wait_for(reaped, 30, "the dead worker's run to be reaped")
    assert run.status == "stale"
    assert [s.status for s in run.steps.order_by("position")] == [
        "succeeded",
        "failed",
        "skipped",
    ]
    assert run_events(run)[-2:] == [
        ("step.finished", 2, "failed"),
        ("run.finished", None, "stale"),
    ]

    start_worker()
    services.resume_run(run.id, operator)

    assert finished(run).status == "succeeded", run.error
    steps = list(run.steps.order_by("position"))
    assert [(s.status, s.attempts) for s in steps] == [
        ("succeeded", 1),  # the drain was asked once, by the first worker
        ("succeeded", 2),
        ("succeeded", 1),
    ]
    started_step_one = [e for e in run_events(run) if e[:2] == ("step.started", 1)]
    assert len(started_step_one) == 1
    ready = daemon_cluster.get(node, "/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (503, "draining")
    execution.join(timeout=30)
