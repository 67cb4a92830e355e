"""Asking for runs (services.request_run) and keeping the record truthful (the reaper,
the conditional claim), against a fake cluster; no worker runs here, so real runs stay
queued (in a broker queue of the test's own, should one be sent)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from console.clusters.models import Cluster
from console.events.models import Event
from console.runbooks import preflight, runner, services
from console.runbooks.models import RunbookRun, RunbookStep
from tests.console.runbooks.fakes import FakeCluster

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_broker")]


def test_a_dry_run_returns_the_verdict_journals_it_and_changes_nothing(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    outcome = services.request_run(
        fake_cluster, "drain", {"node": "unrdf-daemon-1"}, operator, True
    )

    assert outcome.ok and outcome.dry_run and outcome.run is None
    assert outcome.steps[0] == "ask unrdf-daemon-1 to drain"
    assert not RunbookRun.objects.exists()
    assert {method for method, _, _ in fake.calls} == {"GET"}  # only looked
    event = Event.objects.get(kind="run.requested")
    assert (event.actor, event.cluster_id) == ("olivia", fake_cluster.id)
    assert event.payload["dry_run"] is True and event.payload["run_id"] is None
    assert event.payload["ok"] is True


def test_a_real_request_queues_a_run_with_its_steps_pending_and_journals_it(
    fake_cluster: Cluster, operator
) -> None:
    outcome = services.request_run(fake_cluster, "snapshot", {"node": "all"}, operator)

    run = outcome.run
    assert outcome.ok and run is not None
    run.refresh_from_db()
    assert (run.status, run.requested_by, run.params) == ("queued", operator, {"node": "all"})
    assert run.task_id
    steps = list(run.steps.values_list("position", "name", "status"))
    assert steps == [(i, f"snapshot unrdf-daemon-{i - 1}", "pending") for i in range(1, 4)]
    event = Event.objects.get(kind="run.requested")
    assert event.payload == {
        "run_id": run.id, "action": "snapshot", "params": {"node": "all"}, "dry_run": False,
    }  # fmt: skip


def test_a_second_request_while_a_run_is_active_is_refused_naming_that_run(
    fake_cluster: Cluster, operator
) -> None:
    first = services.request_run(fake_cluster, "snapshot", {"node": "all"}, operator).run

    second = services.request_run(fake_cluster, "snapshot", {"node": "all"}, operator)

    reason = f"a run is already in progress on this cluster (run #{first.id})"
    assert not second.ok and second.reasons == [reason]
    assert (second.run.status, second.run.error) == ("refused", reason)
    refused = Event.objects.get(kind="run.refused")
    assert refused.payload == {"run_id": second.run.id, "reasons": [reason]}
    # Cancelling makes it no less in progress: the worker is finishing a step.
    RunbookRun.objects.filter(id=first.id).update(status="cancelling")
    third = services.request_run(fake_cluster, "snapshot", {"node": "all"}, operator)
    assert third.reasons == [reason]


def test_the_database_refuses_a_second_active_run_when_two_requests_race(
    fake_cluster: Cluster, operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = services.request_run(fake_cluster, "snapshot", {"node": "all"}, operator).run
    # The second request's preflight ran before the first run existed (a race), so it
    # sees nothing in progress; only the database can stop it.
    real = preflight.active_run_reason
    calls = iter([None])
    monkeypatch.setattr(
        preflight, "active_run_reason", lambda *a, **kw: next(calls, None) or real(*a, **kw)
    )

    second = services.request_run(fake_cluster, "snapshot", {"node": "all"}, operator)

    assert second.reasons == [f"a run is already in progress on this cluster (run #{first.id})"]
    assert RunbookRun.objects.filter(status__in=["queued", "running"]).count() == 1


def test_a_refused_request_is_recorded_with_its_reasons(fake_cluster: Cluster, operator) -> None:
    outcome = services.request_run(fake_cluster, "drain", {"node": "ghost"}, operator)

    assert not outcome.ok
    run = RunbookRun.objects.get()
    assert run.status == "refused"
    assert run.error.startswith("node ghost is not a member of this cluster")
    assert not run.steps.exists()
    kinds = list(Event.objects.values_list("kind", flat=True))
    assert kinds == ["run.requested", "run.refused"]


def test_viewers_cannot_request_anything_not_even_a_dry_run(fake_cluster: Cluster, viewer) -> None:
    for dry_run in (True, False):
        with pytest.raises(PermissionDenied):
            services.request_run(fake_cluster, "snapshot", {}, viewer, dry_run)
    assert not RunbookRun.objects.exists() and not Event.objects.exists()


def test_the_worker_checks_again_at_the_start_and_refuses_if_the_cluster_changed(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    target = "unrdf-daemon-2"
    run = services.request_run(fake_cluster, "snapshot", {"node": target}, operator).run
    fake.nodes[target].answers = False

    assert runner.execute(run.id) == "refused"

    run.refresh_from_db()
    assert run.status == "refused"
    assert run.error.startswith(f"refused at start: node {target} unreachable")
    assert list(run.steps.values_list("status", flat=True)) == ["skipped"]
    kinds = list(Event.objects.filter(kind__startswith="run.").values_list("kind", flat=True))
    assert kinds == ["run.requested", "run.started", "run.refused", "run.finished"]


def test_a_run_that_already_started_is_not_started_again_by_a_second_message() -> None:
    run = RunbookRun.objects.create(
        cluster=Cluster.objects.create(name="quiet"), action="snapshot", status="running"
    )
    assert runner.execute(run.id) is None
    run.refresh_from_db()
    assert run.status == "running" and run.started_at is None


def test_the_reaper_marks_a_silent_run_stale_and_fails_the_step_it_was_on() -> None:
    console_cluster = Cluster.objects.create(name="quiet")
    long_ago = timezone.now() - timedelta(minutes=5)
    run = RunbookRun.objects.create(
        cluster=console_cluster, action="drain", status="running", started_at=long_ago,
        heartbeat_at=long_ago,
    )  # fmt: skip
    RunbookStep.objects.create(run=run, position=1, name="ask", status="succeeded")
    RunbookStep.objects.create(run=run, position=2, name="wait", status="running")
    RunbookStep.objects.create(run=run, position=3, name="confirm")
    fresh = RunbookRun.objects.create(
        cluster=Cluster.objects.create(name="other"), action="snapshot", status="running",
        started_at=timezone.now(), heartbeat_at=timezone.now(),
    )  # fmt: skip

    assert services.reap_stale_runs() == [run.id]

    run.refresh_from_db()
    assert run.status == "stale" and run.finished_at is not None
    assert "the worker stopped reporting (last heartbeat 300 s ago)" in run.error
    assert list(run.steps.values_list("status", flat=True)) == ["succeeded", "failed", "skipped"]
    fresh.refresh_from_db()
    assert fresh.status == "running"
    finished = Event.objects.get(kind="run.finished")
    assert finished.payload["status"] == "stale" and finished.actor == "system"
    assert services.reap_stale_runs() == []  # once


def test_a_queued_run_no_worker_picks_up_goes_stale_after_the_queued_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = RunbookRun.objects.create(
        cluster=Cluster.objects.create(name="quiet"), action="snapshot", status="queued"
    )
    assert services.reap_stale_runs() == []
    monkeypatch.setenv("RUNBOOK_QUEUED_TIMEOUT_S", "60")

    assert services.reap_stale_runs(timezone.now() + timedelta(seconds=61)) == [run.id]

    run.refresh_from_db()
    assert run.status == "stale"
    assert "no worker started this run within 60 s" in run.error
    # And a message that arrives late finds nothing to do.
    assert runner.execute(run.id) is None
