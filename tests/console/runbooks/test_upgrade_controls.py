"""Run controls over a fake cluster (no processes, the runner in this process): pause stops
before the next step and holds the cluster, resume goes on without repeating a step, abort
of a paused run queues it to roll back, promote only for a run awaiting promotion, each
refused with its reason (409 over the API) otherwise; the upgrade's plan shows its backup
first and, when the release needs it, the code-version switch last."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from console.clusters.models import Cluster, Release
from console.events.models import Event
from console.runbooks import runner, services
from console.runbooks.models import RunbookRun
from console.runbooks.records import reap_stale_runs
from tests.console.runbooks.fakes import FakeCluster

pytestmark = pytest.mark.django_db


def snapshot_all(cluster: Cluster, user: object) -> RunbookRun:
    outcome = services.request_run(cluster, "snapshot", {"node": "all"}, user)
    assert outcome.ok, outcome.reasons
    return outcome.run


def kinds(run: RunbookRun) -> list[str]:
    return list(
        Event.objects.filter(payload__run_id=run.id).order_by("id").values_list("kind", flat=True)
    )


def api(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


def verified(name: str, max_code: int) -> Release:
    return Release.objects.create(
        name=name, package_version="0", sha256="0" * 64, size_bytes=1, wheel_path="/nowhere",
        source="upload", status="verified", max_code_version=max_code,
    )  # fmt: skip


def test_a_pause_asked_during_a_step_stops_the_run_before_the_next_one_and_resume_finishes_it(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = snapshot_all(fake_cluster, operator)

    def pause_during_the_first_snapshot(method: str, node: str, path: str) -> None:
        if path == "/admin/snapshot" and len(fake.calls) and not paused:
            paused.append(services.pause_run(run.id, operator))

    paused: list[RunbookRun] = []

    fake.hooks.append(pause_during_the_first_snapshot)

    assert runner.execute(run.id) == "paused"

    run.refresh_from_db()
    steps = list(run.steps.order_by("position"))
    assert run.status == "paused"
    assert [s.status for s in steps] == ["succeeded", "pending", "pending"]
    assert run.hold_reason == "paused by olivia before step 2 (snapshot unrdf-daemon-1)"
    assert api(operator).get(f"/api/runbooks/runs/{run.id}").json()["hold_reason"] == (
        run.hold_reason
    )
    fake.hooks.clear()

    services.resume_run(run.id, operator)
    assert runner.execute(run.id) == "succeeded"

    steps = list(run.steps.order_by("position"))
    assert [(s.status, s.attempts) for s in steps] == [("succeeded", 1)] * 3
    assert kinds(run) == [
        "run.requested", "run.started", "step.started", "run.pause_requested", "step.finished",
        "run.paused", "run.resumed", "run.started", "step.started", "step.finished",
        "step.started", "step.finished", "run.finished",
    ]  # fmt: skip


def test_a_paused_run_holds_the_cluster_so_no_other_run_starts(
    fake_cluster: Cluster, operator
) -> None:
    paused = RunbookRun.objects.create(
        cluster=fake_cluster, action="upgrade", status="paused", hold_reason="paused by olivia"
    )

    outcome = services.request_run(fake_cluster, "snapshot", {"node": "all"}, operator)

    assert not outcome.ok
    assert outcome.reasons == [f"a run is already in progress on this cluster (run #{paused.id})"]
    with pytest.raises(IntegrityError), transaction.atomic():
        RunbookRun.objects.create(cluster=fake_cluster, action="snapshot", status="queued")


def test_aborting_a_paused_run_queues_it_so_its_worker_rolls_back_instead_of_going_on(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = snapshot_all(fake_cluster, operator)
    fake.hooks.append(
        lambda method, node, path: (
            path == "/admin/snapshot"
            and fake.count("POST", node, path) == 1
            and RunbookRun.objects.filter(id=run.id, status="running").exists()
            and services.pause_run(run.id, operator)
        )
    )
    assert runner.execute(run.id) == "paused"

    services.abort_run(run.id, operator)
    run.refresh_from_db()
    assert (run.status, run.abort_requested) == ("queued", True)

    # A snapshot has nothing to roll back: the worker ends it cancelled, step 2 never runs.
    assert runner.execute(run.id) == "cancelled"
    run.refresh_from_db()
    assert run.error == "cancelled before step 2 (snapshot unrdf-daemon-1)"
    assert fake.count("POST", "unrdf-daemon-1", "/admin/snapshot") == 0
    assert "run.abort_requested" in kinds(run)


def test_each_control_answers_409_with_the_reason_when_the_runs_state_does_not_allow_it(
    fake_cluster: Cluster, operator, viewer
) -> None:
    done = RunbookRun.objects.create(cluster=fake_cluster, action="upgrade", status="succeeded")
    client = api(operator)
    answers = {
        verb: client.post(f"/api/runbooks/runs/{done.id}/{verb}")
        for verb in ("pause", "promote", "abort", "resume")
    }

    assert {verb: a.status_code for verb, a in answers.items()} == dict.fromkeys(answers, 409)
    detail = {verb: a.json()["detail"] for verb, a in answers.items()}
    assert detail["pause"] == f"run #{done.id} is succeeded; only a running run can be paused"
    assert detail["promote"] == (
        f"run #{done.id} is succeeded; only a run paused awaiting promotion can be promoted"
    )
    assert detail["abort"] == (
        f"run #{done.id} is succeeded; only a queued or running run (or a paused one) can be "
        "aborted"
    )
    assert "only a stale or failed run can be resumed (or a paused one)" in detail["resume"]
    assert api(viewer).post(f"/api/runbooks/runs/{done.id}/pause").status_code == 403
    assert client.post("/api/runbooks/runs/999999/promote").status_code == 404


def test_a_run_awaiting_promotion_is_promoted_not_resumed_and_a_rollback_is_not_paused(
    fake_cluster: Cluster, operator
) -> None:
    waiting = RunbookRun.objects.create(
        cluster=fake_cluster, action="upgrade", status="paused",
        hold_reason="awaiting promotion: step 23 (switch the code version to 1) is the point "
        "of no return",
    )  # fmt: skip
    client = api(operator)

    refused = client.post(f"/api/runbooks/runs/{waiting.id}/resume")
    assert refused.status_code == 409
    assert (
        "promote it to go on past that step, or abort it to roll back" in (refused.json()["detail"])
    )
    assert client.get(f"/api/runbooks/runs/{waiting.id}").json()["awaiting_promotion"] is True

    promoted = client.post(f"/api/runbooks/runs/{waiting.id}/promote").json()

    assert (promoted["status"], promoted["promoted_by"]) == ("queued", "olivia")
    assert promoted["hold_reason"] == "" and promoted["promoted_at"] is not None
    assert kinds(waiting) == ["run.promoted"]

    waiting.status, waiting.error = "running", "rolling back: step 5 failed"
    waiting.save()
    no = client.post(f"/api/runbooks/runs/{waiting.id}/pause")
    assert (no.status_code, no.json()["detail"]) == (
        409,
        f"run #{waiting.id} is rolling back; a rollback is not paused",
    )


def test_the_dry_run_shows_the_backup_first_and_the_code_version_switch_waiting_for_promotion(
    fake_cluster: Cluster, operator
) -> None:
    verified("cv-2", max_code=1)
    verified("same-2", max_code=0)

    waits = services.request_run(fake_cluster, "upgrade", {"release": "cv-2"}, operator, True)
    direct = services.request_run(
        fake_cluster, "upgrade", {"release": "cv-2", "requirePromote": False}, operator, True
    )
    none = services.request_run(fake_cluster, "upgrade", {"release": "same-2"}, operator, True)

    assert waits.ok, waits.reasons
    assert waits.steps[0] == "take a backup before the upgrade"
    assert (
        waits.steps[-1] == "switch the code version to 1 (waits for an operator to promote the run)"
    )
    assert direct.steps[-1] == "switch the code version to 1"
    assert none.steps[-1] == "undrain unrdf-daemon-0"
    assert not any("code version" in step for step in none.steps)


def test_a_resume_before_the_worker_paused_keeps_the_run_going_and_both_are_journaled(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = snapshot_all(fake_cluster, operator)

    def pause_then_think_better_of_it(method: str, node: str, path: str) -> None:
        if path == "/admin/snapshot" and not asked:
            asked.append(services.pause_run(run.id, operator).status)
            asked.append(services.resume_run(run.id, operator).status)

    asked: list[str] = []
    fake.hooks.append(pause_then_think_better_of_it)

    assert runner.execute(run.id) == "succeeded"

    assert asked == ["pausing", "running"]
    run.refresh_from_db()
    assert run.hold_reason == "" and run.resumed_count == 0
    assert "run.paused" not in kinds(run)
    assert [k for k in kinds(run) if k.startswith("run.")][2:4] == [
        "run.pause_requested",
        "run.resumed",
    ]


def test_a_paused_run_is_never_reaped_but_a_pausing_one_whose_worker_went_silent_goes_stale(
    fake_cluster: Cluster,
) -> None:
    long_ago = timezone.now() - timedelta(hours=1)
    run = RunbookRun.objects.create(
        cluster=fake_cluster, action="upgrade", status="paused", started_at=long_ago,
        heartbeat_at=long_ago, hold_reason="awaiting promotion: step 23",
    )  # fmt: skip

    assert reap_stale_runs() == []
    run.refresh_from_db()
    assert run.status == "paused"

    RunbookRun.objects.filter(id=run.id).update(status="pausing")
    assert reap_stale_runs() == [run.id]
    run.refresh_from_db()
    assert run.status == "stale" and "resume the run" in run.error
