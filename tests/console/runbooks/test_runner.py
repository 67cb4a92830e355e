"""The runner over a fake cluster (no processes, no Celery): gates checked before each
step, cancel, resume without repeating a finished step, and one ending per run."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.events.models import Event
from console.runbooks import gates, runner, services
from console.runbooks.actions.drain import Drain
from console.runbooks.models import RunbookRun
from console.runbooks.records import end_run, reap_stale_runs
from tests.console.runbooks.fakes import FakeCluster

pytestmark = pytest.mark.django_db
NODE = "unrdf-daemon-1"


class WorkerDied(BaseException):
    """Stands for SIGKILL: nothing in the runner may catch it and tidy up."""


def request(cluster: Cluster, user, action: str = "drain", **params: str) -> RunbookRun:
    outcome = services.request_run(cluster, action, params or {"node": NODE}, user)
    assert outcome.ok, outcome.reasons
    return outcome.run


def statuses(run: RunbookRun) -> list[str]:
    return list(run.steps.order_by("position").values_list("status", flat=True))


def test_a_run_does_its_steps_and_records_each_gate_with_its_value(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = request(fake_cluster, operator)

    assert runner.execute(run.id) == "succeeded"

    run.refresh_from_db()
    assert statuses(run) == ["succeeded"] * 3
    ask = run.steps.get(position=1)
    assert ask.gates == [
        {
            "name": f"a majority stays serving without {NODE}",
            "ok": True,
            "value": {"serving": 2, "needed": 2, "size": 3},
            "reason": "",
        }
    ]
    assert fake.nodes[NODE].draining
    started = Event.objects.get(kind="step.started", payload__position=1)
    assert started.payload["gates"] == ask.gates


def test_a_gate_that_fails_at_run_time_stops_the_run_before_its_step(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = request(fake_cluster, operator)
    # Another node starts draining right after the worker's own preflight read the
    # cluster: only the gate, checked on a fresh view just before the step, sees it.
    fake.hooks.append(
        lambda method, node, path: (
            setattr(fake.nodes["unrdf-daemon-2"], "draining", True)
            if path == "/health/cluster"
            else None
        )
    )

    assert runner.execute(run.id) == "failed"

    run.refresh_from_db()
    reason = f"gate failed: without {NODE}, 1 of 3 nodes would be serving; a majority (2) must be"
    assert run.error == f"step 1 (ask {NODE} to drain) not started: {reason}"
    assert statuses(run) == ["failed", "skipped", "skipped"]
    ask = run.steps.get(position=1)
    assert ask.detail == {"error": reason} and ask.attempts == 0
    assert ask.gates[0]["ok"] is False and ask.gates[0]["value"]["serving"] == 1
    assert fake.count("POST", NODE, "/admin/drain") == 0  # the node was never asked


def gate_first_step(monkeypatch: pytest.MonkeyPatch, *extra: gates.Gate) -> None:
    """Give drain's first step these gates, as the restart and upgrade actions will."""
    plan = Drain.plan

    def gated(self, view, params):
        first, *rest = plan(self, view, params)
        return [dataclasses.replace(first, gates=extra), *rest]

    monkeypatch.setattr(Drain, "plan", gated)


def test_a_critical_alert_gate_stops_a_step(
    fake_cluster: Cluster, fake: FakeCluster, operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not on today's actions (a disk alert is when a snapshot is needed).
    gate_first_step(monkeypatch, gates.no_critical_alert())
    run = request(fake_cluster, operator)
    Alert.objects.create(
        cluster=fake_cluster, rule="DaemonClusterUnhealthy", severity="critical", state="firing",
        summary="down", pending_since=timezone.now(),
    )  # fmt: skip

    assert runner.execute(run.id) == "failed"

    run.refresh_from_db()
    assert run.error.endswith("gate failed: critical alert firing: DaemonClusterUnhealthy")
    assert fake.count("POST", NODE, "/admin/drain") == 0


def test_a_held_gate_must_stay_true_for_its_soak_before_the_step_runs(
    fake_cluster: Cluster, fake: FakeCluster, operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate_first_step(monkeypatch, gates.held(gates.caught_up(NODE, 100, 50), 0.6))
    run = request(fake_cluster, operator)
    started = time.monotonic()

    assert runner.execute(run.id) == "succeeded"

    ask = run.steps.get(position=1)
    assert time.monotonic() - started >= 0.6
    assert ask.gates[0]["name"] == f"{NODE} has caught up with the leader, for 0.6 s"
    assert ask.gates[0]["heldS"] == 0.6 and ask.gates[0]["ok"] is True
    assert fake.count("GET", "unrdf-daemon-0", "/health/cluster") >= 3  # checked again and again


def test_a_held_gate_that_turns_false_during_its_soak_stops_the_run(
    fake_cluster: Cluster, fake: FakeCluster, operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate_first_step(monkeypatch, gates.held(gates.caught_up(NODE, 100, 50), 30))
    run = request(fake_cluster, operator)
    fake.hooks.append(
        lambda method, node, path: (
            setattr(fake.nodes[NODE], "lag_entries", 500)
            if fake.count("GET", "unrdf-daemon-0", "/health/cluster") == 4
            else None
        )
    )

    assert runner.execute(run.id) == "failed"

    run.refresh_from_db()
    assert "lags 1 ms / 500 entries behind the leader" in run.error
    ask = run.steps.get(position=1)
    assert ask.gates[0]["ok"] is False and ask.gates[0]["heldS"] < 30
    assert fake.count("POST", NODE, "/admin/drain") == 0


def test_a_blip_shorter_than_the_grace_does_not_fail_a_soak_which_then_holds_again(
    fake_cluster: Cluster, fake: FakeCluster, operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A node briefly slow on a busy machine (one sample over the lag limit) is not a
    # failed step; the soak counts again from the end of the blip.
    gate_first_step(monkeypatch, gates.held(gates.caught_up(NODE, 100, 50), 0.6))
    run = request(fake_cluster, operator)
    blip_at: list[float] = []

    def blip(method: str, node: str, path: str) -> None:
        asked = fake.count("GET", "unrdf-daemon-0", "/health/cluster")
        if asked == 4:
            fake.nodes[NODE].lag_entries = 500
            blip_at.append(time.monotonic())
        elif asked == 5:
            fake.nodes[NODE].lag_entries = 0

    fake.hooks.append(blip)

    assert runner.execute(run.id) == "succeeded"

    assert blip_at and time.monotonic() - blip_at[0] >= 0.6  # held 0.6 s after the blip
    ask = run.steps.get(position=1)
    assert ask.gates[0]["ok"] is True and ask.gates[0]["heldS"] == 0.6


def test_a_gate_failing_past_the_grace_fails_its_step(
    fake_cluster: Cluster, fake: FakeCluster, operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_GATE_GRACE_MS", "500")
    gate_first_step(monkeypatch, gates.caught_up(NODE, 100, 50))
    fake.nodes[NODE].lag_entries = 500
    run = request(fake_cluster, operator)
    started = time.monotonic()

    assert runner.execute(run.id) == "failed"

    assert time.monotonic() - started >= 0.5
    assert fake.count("GET", "unrdf-daemon-0", "/health/cluster") >= 3  # asked through it
    assert fake.count("POST", NODE, "/admin/drain") == 0


def test_cancelling_a_queued_run_ends_it_at_once_and_a_late_message_does_nothing(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = request(fake_cluster, operator)
    asked = len(fake.calls)

    services.cancel_run(run.id, operator)

    run.refresh_from_db()
    assert (run.status, run.error) == ("cancelled", "cancelled by olivia before it started")
    assert statuses(run) == ["skipped"] * 3
    assert runner.execute(run.id) is None
    assert len(fake.calls) == asked  # the worker never talked to the cluster
    # The cluster is free again.
    assert request(fake_cluster, operator, "snapshot", node="all").status == "queued"


def test_a_running_run_is_cancelled_between_steps(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = request(fake_cluster, operator)

    def cancel_after_asking(method: str, node: str, path: str) -> None:
        if path == "/admin/drain":
            assert services.cancel_run(run.id, operator).status == "cancelling"

    fake.hooks.append(cancel_after_asking)

    assert runner.execute(run.id) == "cancelled"

    run.refresh_from_db()
    assert run.status == "cancelled" and run.cancel_requested_by == operator
    assert run.error == f"cancelled before step 2 (wait for {NODE}'s work to finish)"
    assert statuses(run) == ["succeeded", "skipped", "skipped"]
    assert fake.count("GET", NODE, "/queue") == 0
    kinds = [e.kind for e in Event.objects.filter(payload__run_id=run.id).order_by("id")]
    assert "run.cancel_requested" in kinds and kinds[-1] == "run.finished"


def test_a_step_that_waits_stops_waiting_when_the_run_is_cancelled(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    fake.nodes[NODE].active = 10**6  # work that would take forever to finish
    run = request(fake_cluster, operator)
    fake.hooks.append(
        lambda method, node, path: (
            services.cancel_run(run.id, operator)
            if path == "/queue" and fake.count("GET", NODE, "/queue") == 2
            else None
        )
    )

    assert runner.execute(run.id) == "cancelled"

    run.refresh_from_db()
    wait = run.steps.get(position=2)
    assert wait.status == "failed"
    assert wait.detail["error"].endswith(f"cancelled while waiting for {NODE}'s queue to empty")
    assert statuses(run) == ["succeeded", "failed", "skipped"]


def test_only_queued_or_running_runs_can_be_cancelled(fake_cluster: Cluster, operator) -> None:
    run = request(fake_cluster, operator)
    runner.execute(run.id)
    with pytest.raises(services.NotNow, match=r"is succeeded; only a queued or running run"):
        services.cancel_run(run.id, operator)


def test_a_run_whose_worker_died_resumes_without_repeating_a_finished_step(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    fake.nodes[NODE].active = 3
    run = request(fake_cluster, operator)

    def die_while_waiting(method: str, node: str, path: str) -> None:
        if path == "/queue" and not resumed:
            raise WorkerDied

    resumed = False
    fake.hooks.append(die_while_waiting)
    with pytest.raises(WorkerDied):
        runner.execute(run.id)
    run.refresh_from_db()
    assert run.status == "running" and statuses(run) == ["succeeded", "running", "pending"]

    assert reap_stale_runs(timezone.now() + timedelta(minutes=5)) == [run.id]
    run.refresh_from_db()
    assert run.status == "stale" and "resume the run or request it again" in run.error

    resumed = True
    services.resume_run(run.id, operator)
    run.refresh_from_db()
    assert (run.status, run.resumed_count, run.error) == ("queued", 1, "")
    assert statuses(run) == ["succeeded", "pending", "pending"]

    # Preflight would now refuse ("already draining"): a resumed run is not re-judged,
    # only its remaining steps' gates are checked.
    assert runner.execute(run.id) == "succeeded"

    assert fake.count("POST", NODE, "/admin/drain") == 1
    steps = list(run.steps.order_by("position"))
    assert [s.attempts for s in steps] == [1, 2, 1]
    assert statuses(run) == ["succeeded"] * 3
    kinds = [e.kind for e in Event.objects.filter(payload__run_id=run.id).order_by("id")]
    assert kinds.count("run.resumed") == 1 and kinds[-1] == "run.finished"


def test_a_failed_run_resumes_at_the_failed_step(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = request(fake_cluster, operator, "snapshot", node="all")
    # unrdf-daemon-1 stops answering once the first node is snapshotted.
    fake.hooks.append(
        lambda method, node, path: (
            setattr(fake.nodes["unrdf-daemon-1"], "answers", False)
            if path == "/admin/snapshot" and node == "unrdf-daemon-0"
            else None
        )
    )
    assert runner.execute(run.id) == "failed"
    assert statuses(run) == ["succeeded", "failed", "skipped"]

    fake.hooks.clear()
    fake.nodes["unrdf-daemon-1"].answers = True
    services.resume_run(run.id, operator)
    assert runner.execute(run.id) == "succeeded"

    assert [fake.count("POST", f"unrdf-daemon-{i}", "/admin/snapshot") for i in range(3)] == [
        1,
        1,
        1,
    ]


def test_resume_is_refused_for_a_finished_run_and_while_another_run_holds_the_cluster(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    done = request(fake_cluster, operator, "snapshot", node="all")
    runner.execute(done.id)
    with pytest.raises(services.NotNow, match="is succeeded; only a stale or failed run"):
        services.resume_run(done.id, operator)

    stale = RunbookRun.objects.create(cluster=fake_cluster, action="snapshot", status="stale")
    busy = request(fake_cluster, operator, "snapshot", node="all")
    with pytest.raises(services.NotNow) as refused:
        services.resume_run(stale.id, operator)
    assert str(refused.value) == (
        f"run #{stale.id} cannot be resumed now: "
        f"a run is already in progress on this cluster (run #{busy.id})"
    )
    stale.refresh_from_db()
    assert stale.status == "stale"


def test_viewers_can_neither_cancel_nor_resume(fake_cluster: Cluster, operator, viewer) -> None:
    from django.core.exceptions import PermissionDenied

    run = request(fake_cluster, operator)
    for verb in (services.cancel_run, services.resume_run):
        with pytest.raises(PermissionDenied):
            verb(run.id, viewer)
    run.refresh_from_db()
    assert run.status == "queued"


def test_a_run_ends_once_whoever_ends_it(fake_cluster: Cluster, operator) -> None:
    run = request(fake_cluster, operator)
    assert end_run(run.id, "failed", "first")
    assert not end_run(run.id, "succeeded", "second")
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "first")
    assert Event.objects.filter(kind="run.finished", payload__run_id=run.id).count() == 1


def test_a_cancelling_run_whose_worker_died_is_reaped_as_cancelled(fake_cluster: Cluster) -> None:
    long_ago = timezone.now() - timedelta(minutes=5)
    run = RunbookRun.objects.create(
        cluster=fake_cluster, action="snapshot", status="cancelling", started_at=long_ago,
        heartbeat_at=long_ago,
    )  # fmt: skip
    run.steps.create(position=1, name="snapshot a", status="running")

    assert reap_stale_runs() == [run.id]

    run.refresh_from_db()
    assert run.status == "cancelled" and statuses(run) == ["failed"]
