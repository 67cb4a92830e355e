"""Rolling a run back: the steps an action adds to its run after a failure or an abort.

A plan is fixed when the run is requested, but a rollback is only known when something
fails: which nodes were touched. The action's `rollback(params, touched)` gives the steps;
they are appended to the run as new rows (after the plan's), run with their gates and no
cancel (an abort must not abort its own rollback), and the run ends:

- `rolled_back`: every step of the rollback succeeded, with the reason of the failure;
- `needs_operator`: some did not; the error says which, and which node runs what.

A worker that dies during the rollback leaves the added rows; the resumed run sees them
and finishes the rollback (its finished steps are not repeated), never the plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from django.db.models import Max

from console.events import journal
from console.runbooks.actions import ACTIONS
from console.runbooks.actions.base import Step, StepContext
from console.runbooks.models import RunbookRun, RunbookStep
from console.runbooks.nodes import NodeManagerError, manager_for
from console.runbooks.records import end_run

DoStep = Callable[[RunbookRun, RunbookStep, Step, StepContext], "str | None"]
PREFIX = "rollback: "
OURS = ("running", "cancelling", "pausing")


def after(
    run: RunbookRun, planned: list[RunbookStep], ctx: StepContext, why: str, do: DoStep
) -> str | None:
    """Roll back what the run did so far; its final status, or None when the action has
    nothing to undo (the caller then ends the run as before)."""
    handler = ACTIONS[run.action]
    params, _ = handler.parse(run.params)
    if params is None:
        return None
    started = [r.name for r in planned if r.status in ("succeeded", "failed", "running")]
    touched = handler.touched(started)
    steps = handler.rollback(params, touched)
    if not steps:
        return None
    journal.append(
        "run.rolling_back", actor="worker", cluster=run.cluster, run_id=run.id, reason=why,
        nodes=list(reversed(touched)),
    )  # fmt: skip
    RunbookRun.objects.filter(id=run.id, status__in=OURS).update(error=f"rolling back: {why}")
    last = run.steps.aggregate(top=Max("position"))["top"] or 0
    rows = [
        RunbookStep.objects.create(run=run, position=last + i, name=step.name)
        for i, step in enumerate(steps, start=1)
    ]
    return _run(run, rows, steps, ctx, why, do)


def resume(run: RunbookRun, added: list[RunbookStep], ctx: StepContext, do: DoStep) -> str:
    """Finish a rollback a dead worker left half-done."""
    handler = ACTIONS[run.action]
    params, _ = handler.parse(run.params)
    stops = [
        r.name.removeprefix(PREFIX + "stop ") for r in added if r.name.startswith(PREFIX + "stop ")
    ]
    steps = handler.rollback(params, list(reversed(stops))) if params is not None else []
    if [s.name for s in steps] != [r.name for r in added]:
        return _end(run, "needs_operator", "could not rebuild the interrupted rollback")
    return _run(run, added, steps, ctx, "resumed after the worker stopped", do)


def _run(
    run: RunbookRun,
    rows: list[RunbookStep],
    steps: list[Step],
    ctx: StepContext,
    why: str,
    do: DoStep,
) -> str:
    ctx = dataclasses.replace(ctx, cancel_requested=lambda: False)
    failures = []
    for row, step in zip(rows, steps, strict=True):
        if row.status == "succeeded":
            continue
        if error := do(run, row, step, ctx):
            failures.append(f"{row.name}: {error.splitlines()[0]}")
    where = releases_now(run)
    if failures:
        error = (
            f"{why}; the rollback did not finish ({'; '.join(failures)}); nodes now run: "
            f"{where}. Check those nodes, then restart them on the release you want"
        )
        return _end(run, "needs_operator", error)
    return _end(run, "rolled_back", f"rolled back after: {why}; nodes now run: {where}")


def releases_now(run: RunbookRun) -> str:
    """`n1 on r1, n2 on r2`: which node each node manager starts from what."""
    try:
        nodes = manager_for(run.cluster)
        found = {name: nodes.status(name) for name in nodes.names()}
    except NodeManagerError as exc:
        return f"unknown ({exc})"
    return ", ".join(
        f"{name} on {state.release or 'the checkout'}{'' if state.running else ' (stopped)'}"
        for name, state in sorted(found.items())
    )


def _end(run: RunbookRun, status: str, error: str) -> str:
    end_run(run.id, status, error, actor="worker", from_states=OURS)
    return status
