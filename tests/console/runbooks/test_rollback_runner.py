"""The runner's rollback over a fake cluster: an action whose step fails gets the steps
its `rollback` gives appended to the run and ends `rolled_back` (or `needs_operator`
when the rollback itself fails); an abort rolls back too; a worker that dies during the
rollback is resumed into the rollback, without repeating its finished steps."""

from __future__ import annotations

from typing import Any

import pytest

from console.clusters.models import Cluster
from console.events.models import Event
from console.runbooks import actions, preflight, rollback, runner, services
from console.runbooks.actions.base import Action, Params, Step, StepContext, StepFailed
from console.runbooks.live import ClusterView
from console.runbooks.models import RunbookRun
from tests.console.runbooks.fakes import FakeCluster

pytestmark = pytest.mark.django_db


class WorkerDied(BaseException):
    """Stands for SIGKILL: nothing in the runner may catch it and tidy up."""


class ToyParams(Params):
    fail_at: str = "b"  # the forward step that fails
    rollback_fails: bool = False


class Toy(Action):
    """Forward steps touch a, b, c in turn; rollback undoes the touched ones, newest first."""

    name = "toy"
    label = "Toy"
    Params = ToyParams
    done: list[str] = []  # what the steps did, in order, across workers
    die_at: str | None = None

    def check(self, view: ClusterView, params: ToyParams, client: Any) -> list[str]:
        return []

    def plan(self, view: ClusterView, params: ToyParams) -> list[Step]:
        return [Step(f"touch {n}", self._touch(n, n == params.fail_at)) for n in "abc"]

    def touched(self, step_names: list[str]) -> list[str]:
        return [n.removeprefix("touch ") for n in step_names]

    def rollback(self, params: ToyParams, touched: list[str]) -> list[Step]:
        return [
            Step(f"rollback: stop {n}", self._undo(n, params.rollback_fails and n == "a"))
            for n in reversed(touched)
        ]

    def _touch(self, name: str, fails: bool) -> Any:
        def run(ctx: StepContext) -> dict[str, Any]:
            Toy.done.append(f"touch {name}")
            if fails:
                raise StepFailed(f"{name} broke")
            return {}

        return run

    def _undo(self, name: str, fails: bool) -> Any:
        def run(ctx: StepContext) -> dict[str, Any]:
            if Toy.die_at == name:
                Toy.die_at = None
                raise WorkerDied()
            Toy.done.append(f"undo {name}")
            if fails:
                raise StepFailed(f"{name} would not go back")
            return {}

        return run


@pytest.fixture(autouse=True)
def toy(monkeypatch: pytest.MonkeyPatch) -> Toy:
    action = Toy()
    Toy.done, Toy.die_at = [], None
    monkeypatch.setitem(actions.ACTIONS, "toy", action)
    monkeypatch.setitem(preflight.ACTIONS, "toy", action)
    monkeypatch.setitem(rollback.ACTIONS, "toy", action)
    monkeypatch.setattr(rollback, "releases_now", lambda run: "a on old, b on old")
    return action


def request(cluster: Cluster, user: object, **params: Any) -> RunbookRun:
    outcome = services.request_run(cluster, "toy", params, user)
    assert outcome.ok, outcome.reasons
    return outcome.run


def steps(run: RunbookRun) -> list[tuple[str, str]]:
    return list(run.steps.order_by("position").values_list("name", "status"))


def test_a_failed_step_rolls_back_the_touched_nodes_newest_first_and_ends_rolled_back(
    fake_cluster: Cluster, operator
) -> None:
    run = request(fake_cluster, operator)

    assert runner.execute(run.id) == "rolled_back"

    run.refresh_from_db()
    assert Toy.done == ["touch a", "touch b", "undo b", "undo a"]
    assert steps(run) == [
        ("touch a", "succeeded"),
        ("touch b", "failed"),
        ("touch c", "skipped"),
        ("rollback: stop b", "succeeded"),
        ("rollback: stop a", "succeeded"),
    ]
    assert run.error.startswith("rolled back after: step 2 (touch b) failed: b broke")
    assert "a on old, b on old" in run.error
    rolling = Event.objects.get(kind="run.rolling_back")
    assert rolling.payload["nodes"] == ["b", "a"]
    assert Event.objects.get(kind="run.finished").payload["status"] == "rolled_back"


def test_a_rollback_that_fails_ends_needs_operator_naming_the_step_and_where_nodes_run(
    fake_cluster: Cluster, operator
) -> None:
    run = request(fake_cluster, operator, rollback_fails=True)

    assert runner.execute(run.id) == "needs_operator"

    run.refresh_from_db()
    assert "rollback: stop a: a would not go back" in run.error
    assert "nodes now run: a on old, b on old" in run.error


def test_an_abort_mid_run_rolls_back_instead_of_just_stopping(
    fake_cluster: Cluster, fake: FakeCluster, operator
) -> None:
    run = request(fake_cluster, operator, fail_at="none")
    original = Toy._touch

    def touch_then_abort(self: Toy, name: str, fails: bool) -> Any:
        inner = original(self, name, fails)

        def run_it(ctx: StepContext) -> dict[str, Any]:
            detail = inner(ctx)
            if name == "b":  # the operator presses abort while b is being done
                services.cancel_run(run.id, operator)
            return detail

        return run_it

    Toy._touch = touch_then_abort  # type: ignore[method-assign]
    try:
        assert runner.execute(run.id) == "rolled_back"
    finally:
        Toy._touch = original  # type: ignore[method-assign]

    assert Toy.done == ["touch a", "touch b", "undo b", "undo a"]
    run.refresh_from_db()
    assert "cancelled before step 3" in run.error


def test_a_worker_killed_during_the_rollback_resumes_the_rollback_without_repeating_it(
    fake_cluster: Cluster, operator
) -> None:
    run = request(fake_cluster, operator, fail_at="c")
    Toy.die_at = "a"  # dies on the last undo, after undoing c and b

    with pytest.raises(WorkerDied):
        runner.execute(run.id)
    RunbookRun.objects.filter(id=run.id).update(status="stale")
    services.resume_run(run.id, operator)
    assert runner.execute(run.id) == "rolled_back"

    assert Toy.done == ["touch a", "touch b", "touch c", "undo c", "undo b", "undo a"]
    run.refresh_from_db()
    assert [s for s in steps(run) if s[0].startswith("rollback")] == [
        ("rollback: stop c", "succeeded"),
        ("rollback: stop b", "succeeded"),
        ("rollback: stop a", "succeeded"),
    ]
