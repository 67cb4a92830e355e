"""The API's shape of a run's progress (`progress` in GET /api/runbooks/runs/{id})."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ninja import Field, Schema

from console.runbooks.progress import run_progress


class GateProgressOut(Schema):
    name: str
    ok: bool
    value: str = Field(description="what the gate measured when last checked, in words")
    threshold: str = Field(description="what it must be (empty when its name says it)")
    held_s: float | None = Field(description="how long a held gate has held so far")
    hold_s: float | None = Field(description="how long a held gate must hold (a soak)")
    reason: str


class NodeProgressOut(Schema):
    node: str
    state: str = Field(
        description="pending, in progress, soaking, done, failed, skipped, stopped, "
        "rolling back or rolled back"
    )
    phase: str = Field(
        description="drain, handover, stop, start, catch up, soak, undrain, ... (the same names as the phase in an upgrade step's detail)"
    )
    step: str = Field(description="the node's step now (its last one once it is over)")
    release_before: str | None = Field(description='"" is the checkout; null: not known')
    release_after: str | None
    elapsed_s: float | None


class ProgressOut(Schema):
    nodes: list[NodeProgressOut] = Field(description="one row per node the run acts on")
    nodes_done: int
    current_step: str | None
    gates_step: str | None = Field(description="the step whose gates `gates` are")
    gates: list[GateProgressOut]
    elapsed_s: float | None
    remaining_s: float | None = Field(
        description="average time of a finished node times the nodes left; null until one finished"
    )
    estimate: str


def progress_out(run: Any) -> dict[str, Any]:
    return asdict(run_progress(run))
