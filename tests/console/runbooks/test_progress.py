"""A run's progress per node, read back from its steps: the plain functions, the run
page's fragment and the API's `progress` field."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from console.clusters.models import Cluster
from console.runbooks.models import RunbookRun, RunbookStep
from console.runbooks.plan_view import plan_view
from console.runbooks.progress import build, duration, parse_step
from console.runbooks.progress_gates import gate_view
from tests.console.runbooks.test_views import api

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
NODES = ["n1", "n2", "n0"]  # followers first, the leader last


@dataclass
class S:
    """A step as the progress functions read it (RunbookStep's fields)."""

    position: int
    name: str
    status: str = "pending"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def node_step_names(node: str, release: str = "up-2") -> list[str]:
    """The upgrade's per-node step names (actions/upgrade.py node_steps)."""
    return [
        f"drain {node}",
        f"hand leadership away from {node} if it leads",
        f"stop {node}",
        f"start {node} on release {release}",
        f"wait until {node} has rejoined and caught up",
        f"soak {node} on release {release}",
        f"undrain {node}",
    ]


def upgrade_steps() -> list[S]:
    names = ["take a backup before the upgrade"]
    for node in NODES:
        names += node_step_names(node)
    return [S(i, name) for i, name in enumerate(names, start=1)]


def finish(steps: list[S], positions: range, start: float, each: float) -> None:
    """Mark steps succeeded one after the other, `each` seconds apiece from `start`."""
    for i, position in enumerate(positions):
        step = steps[position - 1]
        step.status, step.started_at = "succeeded", at(start + i * each)
        step.finished_at = at(start + (i + 1) * each)


SOAK_GATES = [
    {"name": "n2 reports release up-2, for 3 s", "ok": True, "value": "up-2", "reason": "",
     "heldS": 1.2},
    {"name": "n2 has caught up with the leader, for 3 s", "ok": True,
     "value": {"lagMs": 4.0, "lagEntries": 1}, "reason": "", "heldS": 1.2},
    {"name": "error ratio and p95 no worse than before, for 3 s", "ok": False,
     "value": {"baseline": {"errorRatio": 0.0, "p95Ms": 10.0},
               "soak": {"errorRatio": 0.05, "p95Ms": 12.0},
               "errorRatioLimit": 0.01, "p95Limit": 15.0},
     "reason": "worse than before the upgrade: error ratio 5.00% above 1.00%", "heldS": 1.2},
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "node", "phase", "release"),
    [
        ("drain n1", "n1", "drain", None),
        ("hand leadership away from n1 if it leads", "n1", "handover", None),
        ("stop n1", "n1", "stop", None),
        ("start n1 on release up-2", "n1", "start", "up-2"),
        ("start n1 on release the checkout", "n1", "start", ""),
        ("wait until n1 has rejoined and caught up", "n1", "catch up", None),
        ("soak n1 on release up-2", "n1", "soak", "up-2"),
        ("undrain n1", "n1", "undrain", None),
        ("rollback: start n1 on up-1", "n1", "rollback: start", "up-1"),
        ("rollback: start n1 on the checkout", "n1", "rollback: start", ""),
        ("rollback: undrain n1", "n1", "rollback: undrain", None),
        ("start n1", "n1", "start", None),
        ("take a backup before the upgrade", None, "", None),
        ("switch the code version to 2 (waits for an operator to promote the run)", None, "", None),
        ("kill the leader, measure, restart it", None, "", None),
    ],
)
def test_a_step_name_tells_its_node_phase_and_release(
    name: str, node: str | None, phase: str, release: str | None
) -> None:
    parsed = parse_step(name)
    assert (parsed.node, parsed.phase, parsed.release) == (node, phase, release)
    assert parsed.rollback is name.startswith("rollback: ")


def test_mid_upgrade_each_node_shows_its_step_releases_and_the_soak_gates_being_held() -> None:
    steps = upgrade_steps()
    finish(steps, range(1, 9), 0, 5)  # the backup, then n1 in 7 steps: 35 s for n1
    finish(steps, range(9, 14), 40, 2)  # n2 up to its catch-up
    steps[13].gates = SOAK_GATES  # n2's soak: holding its gates, still pending

    progress = build(steps, "running", at(0), None, {"n1": "", "n2": "", "n0": ""}, now=at(52))

    rows = {n.node: (n.state, n.phase, n.release_before, n.release_after) for n in progress.nodes}
    assert [n.node for n in progress.nodes] == NODES
    assert rows == {
        "n1": ("done", "undrain", "", "up-2"),
        "n2": ("soaking", "soak", "", "up-2"),
        "n0": ("pending", "", "", "up-2"),
    }
    assert progress.nodes_done == 1
    assert progress.current_step == progress.gates_step == "soak n2 on release up-2"
    assert progress.elapsed_s == 52
    # n1 took 35 s; n2 has been at it 12 s (23 s to go) and n0 has 35 s to go.
    assert progress.remaining_s == pytest.approx(58)
    assert progress.estimate == "about 58 s"
    release, lag, baseline = progress.gates
    assert (release.name, release.value, release.threshold) == (
        "n2 reports release up-2", "up-2", "up-2",
    )  # fmt: skip
    assert (release.held_s, release.hold_s) == (1.2, 3.0)
    assert (lag.value, lag.threshold) == ("4 ms, 1 entry behind", "≤ 100 ms, ≤ 50 entries")
    assert not baseline.ok and "5.00% above" in baseline.reason
    assert baseline.value == "error ratio 5.00%, p95 12 ms"
    assert baseline.threshold == "error ratio ≤ 1.00%, p95 ≤ 15 ms"


def test_before_one_node_finished_the_estimate_says_it_is_estimating() -> None:
    steps = upgrade_steps()
    finish(steps, range(1, 4), 0, 1)
    steps[3].status, steps[3].started_at = "running", at(3)  # n1 stopping

    progress = build(steps, "running", at(0), None, {}, now=at(4))

    assert (progress.remaining_s, progress.estimate) == (None, "estimating…")
    n1 = progress.nodes[0]
    assert (n1.state, n1.phase, n1.step, n1.release_before) == (
        "in progress", "stop", "stop n1", None,
    )  # fmt: skip


def test_an_aborted_upgrade_shows_the_touched_node_rolled_back_and_the_others_skipped() -> None:
    steps = upgrade_steps()
    finish(steps, range(1, 6), 0, 1)  # n1 drained, stopped, started on up-2
    for step in steps[5:]:
        step.status = "skipped"
    back = ["rollback: stop n1", "rollback: start n1 on up-1"]
    back += ["rollback: wait until n1 has rejoined and caught up", "rollback: undrain n1"]
    steps += [S(len(steps) + i, name) for i, name in enumerate(back, start=1)]
    finish(steps, range(23, 27), 10, 1)

    progress = build(steps, "rolled_back", at(0), at(14), {"n1": "up-1", "n2": "up-1"}, at(99))

    states = {n.node: (n.state, n.phase) for n in progress.nodes}
    assert states == {
        "n1": ("rolled back", "rollback: undrain"),
        "n2": ("skipped", ""),
        "n0": ("skipped", ""),
    }
    assert (progress.nodes[0].release_before, progress.nodes[0].release_after) == ("up-1", "up-2")
    assert progress.nodes_done == 1
    assert progress.elapsed_s == 14  # to its end, not to now
    assert (progress.remaining_s, progress.estimate) == (None, "")


def test_a_paused_run_says_so_instead_of_an_estimate() -> None:
    steps = upgrade_steps()
    finish(steps, range(1, 9), 0, 5)

    progress = build(steps, "paused", at(0), None, {}, now=at(60))

    assert (progress.remaining_s, progress.estimate) == (None, "paused")
    assert [n.state for n in progress.nodes] == ["done", "pending", "pending"]


def test_while_rolling_back_the_estimate_counts_only_the_nodes_still_to_put_back() -> None:
    names = ["stop a", "stop b"]
    for node in ("b", "a"):  # newest first
        names += [f"rollback: stop {node}", f"rollback: start {node} on up-1"]
    steps = [S(i, name) for i, name in enumerate(names, start=1)]
    finish(steps, range(1, 3), 0, 1)
    finish(steps, range(3, 5), 10, 4)  # b back in 8 s
    steps[4].status, steps[4].started_at = "running", at(20)  # a: 2 s in

    progress = build(steps, "running", at(0), None, {}, now=at(22))

    assert [(n.node, n.state) for n in progress.nodes] == [
        ("a", "rolling back"), ("b", "rolled back"),
    ]  # fmt: skip
    assert progress.remaining_s == pytest.approx(6)


def test_a_gate_of_unknown_shape_shows_its_raw_value() -> None:
    gate = gate_view({"name": "something new", "ok": True, "value": {"x": 1}, "reason": ""})
    assert (gate.value, gate.threshold, gate.hold_s) == ("x=1", "", None)
    odd = gate_view({"name": "the cluster has quorum and a leader", "ok": False, "value": 3})
    assert odd.value == "3"


def test_the_dry_run_plan_names_the_node_order_soak_and_deadline_as_the_form_posted_them() -> None:
    names = [s.name for s in upgrade_steps()]

    plan = plan_view("upgrade", {"release": "up-2", "soakS": "2"}, names)
    unparsable = plan_view("upgrade", {"release": "up-2", "soakS": "-1"}, names)

    assert plan is not None and (plan.order, plan.soak_s, plan.node_deadline_s) == (
        NODES, 2.0, 120.0,
    )  # fmt: skip
    assert unparsable is not None and unparsable.soak_s is None
    assert plan_view("drain", {"node": "n1"}, ["drain n1"]) is None  # one node: no order


def test_durations_read_short() -> None:
    assert [duration(s) for s in (None, 4.4, 65, 3725)] == ["—", "4 s", "1 min 05 s", "1 h 02 min"]


@pytest.fixture
def upgrade_run(db: None) -> RunbookRun:
    cluster = Cluster.objects.create(name="quiet", seed_urls=["http://127.0.0.1:9"])
    run = RunbookRun.objects.create(
        cluster=cluster, action="upgrade", status="running", started_at=at(0),
        params={"release": "up-2", "previous": {"n1": "up-1", "n2": "up-1", "n0": "up-1"}},
    )  # fmt: skip
    for step in upgrade_steps():
        RunbookStep.objects.create(run=run, position=step.position, name=step.name)
    RunbookStep.objects.filter(run=run, position=1).update(status="succeeded")
    RunbookStep.objects.filter(run=run, position=2).update(status="running", started_at=at(1))
    return run


def test_the_run_page_fragment_shows_a_row_per_node_with_its_state_and_phase(
    upgrade_run: RunbookRun, operator
) -> None:
    client = Client()
    client.force_login(operator)

    html = client.get(f"/runbooks/runs/{upgrade_run.id}/steps/").content.decode()

    assert 'data-testid="node-progress"' in html
    assert 'data-node="n1" data-state="in progress" data-phase="drain"' in html
    assert 'data-node="n0" data-state="pending" data-phase=""' in html
    assert "up-1 → up-2" in html and "estimating…" in html


def test_a_single_node_run_has_no_progress_table(db: None, operator) -> None:
    cluster = Cluster.objects.create(name="quiet", seed_urls=["http://127.0.0.1:9"])
    run = RunbookRun.objects.create(cluster=cluster, action="drain", status="running")
    RunbookStep.objects.create(run=run, position=1, name="drain n1", status="running")
    client = Client()
    client.force_login(operator)

    html = client.get(f"/runbooks/runs/{run.id}/").content.decode()

    assert 'data-testid="run-steps"' in html and 'data-testid="node-progress"' not in html


def test_the_api_run_detail_carries_the_same_progress(upgrade_run: RunbookRun, viewer) -> None:
    body = api(viewer).get(f"/api/runbooks/runs/{upgrade_run.id}").json()

    progress = body["progress"]
    assert [(n["node"], n["state"], n["phase"]) for n in progress["nodes"]] == [
        ("n1", "in progress", "drain"), ("n2", "pending", ""), ("n0", "pending", ""),
    ]  # fmt: skip
    assert progress["nodes"][0]["release_before"] == "up-1"
    assert progress["nodes"][0]["release_after"] == "up-2"
    assert (progress["estimate"], progress["remaining_s"]) == ("estimating…", None)
    assert progress["current_step"] == "drain n1"


@pytest.mark.usefixtures("isolated_broker")
def test_cancel_from_the_page_answers_with_the_fragment_and_a_409_says_why_not(
    upgrade_run: RunbookRun, operator
) -> None:
    client = Client(headers={"X-Requested-With": "fetch"})
    client.force_login(operator)

    first = client.post(f"/runbooks/runs/{upgrade_run.id}/cancel/")
    again = client.post(f"/runbooks/runs/{upgrade_run.id}/resume/")

    assert first.status_code == 200
    assert 'data-status="cancelling"' in first.content.decode()
    assert 'data-testid="node-progress"' in first.content.decode()
    assert again.status_code == 409
    assert 'data-testid="run-refusal"' in again.content.decode()


def test_a_run_whose_stored_previous_releases_are_not_a_map_shows_them_as_unknown(
    upgrade_run: RunbookRun, viewer
) -> None:
    RunbookRun.objects.filter(id=upgrade_run.id).update(params={"previous": ["up-1"]})

    response = api(viewer).get(f"/api/runbooks/runs/{upgrade_run.id}")

    assert response.status_code == 200
    assert {n["release_before"] for n in response.json()["progress"]["nodes"]} == {None}
