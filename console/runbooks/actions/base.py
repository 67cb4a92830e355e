"""The action framework: an action is a class with a parameter schema, a check and a plan.

- `Params`: a pydantic model (extra keys forbidden), so the API's OpenAPI shows it and
  bad input is refused naming the field, before the cluster is asked anything.
- `check(view, params, client)`: why it is unsafe right now (reasons, empty if safe).
  The same check backs the dry-run button, the real request and the worker's re-check.
- `plan(view, params)`: its ordered steps. Each step may carry gates: conditions the
  worker checks again just before the step runs, on a fresh view of the cluster.

A plan must be rebuildable from the stored params and a current view with the same
step names: that is how a resumed run finds where it stopped. Steps must be safe to
repeat when they were interrupted (the worker may have died half-way through one), and
wait only through `ctx.wait_until`, which keeps the heartbeat and honours a cancel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from console.clusters.daemon_client import DaemonClient
from console.runbooks import conf
from console.runbooks.live import ClusterView, Member, NodeHealth, probe


class StepFailed(Exception):
    """A step could not do its job; the message is shown to the operator as is."""


class StepCancelled(Exception):
    """The operator cancelled the run while a step was waiting; it stops there."""


NodeName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=63, pattern=r"^[^\x00]+$"),
    Field(description="the name of a node, as in the cluster's membership"),
]


class Params(BaseModel):
    """Base of every action's parameters: unknown keys are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class StepContext:
    client: DaemonClient
    # Proves the worker is alive; raises if the run is no longer ours (reaped as stale).
    heartbeat: Callable[[], None]
    # True once the operator asked to cancel: a waiting step stops waiting.
    cancel_requested: Callable[[], bool] = lambda: False
    cluster: Any = None  # the Cluster row, for gates that read the database (alerts)

    def wait_until(
        self, condition: Callable[[], dict[str, Any] | None], timeout_s: float, what: str
    ) -> dict[str, Any]:
        """Poll `condition` (a detail dict when met, None otherwise) until `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.heartbeat()
            if self.cancel_requested():
                raise StepCancelled(f"cancelled while waiting for {what}")
            detail = condition()
            if detail is not None:
                return detail
            if time.monotonic() > deadline:
                raise StepFailed(f"gave up after {timeout_s:.0f}s waiting for {what}")
            time.sleep(conf.POLL_INTERVAL_S)


@dataclass(frozen=True)
class GateResult:
    ok: bool
    value: Any  # what was measured, shown next to the gate (JSON-serialisable)
    reason: str = ""  # why the step may not run, when not ok


@dataclass(frozen=True)
class Gate:
    """A condition checked just before its step runs, on a fresh view of the cluster.

    With `hold_s`, the condition must stay true that long (checked every poll, values
    shown live): a soak. It fails at the first check that is not met."""

    name: str
    check: Callable[[ClusterView, StepContext], GateResult]
    hold_s: float = 0.0


StepRun = Callable[[StepContext], dict[str, Any]]
"""What a step does: talk to the cluster, return what to record (raise StepFailed)."""


@dataclass(frozen=True)
class Step:
    name: str
    run: StepRun
    gates: tuple[Gate, ...] = field(default=())


class Action:
    """One runbook action. Subclasses set the class attributes and the two methods."""

    name: ClassVar[str]
    label: ClassVar[str]
    Params: ClassVar[type[Params]]

    def parse(self, raw: Any) -> tuple[Params | None, list[str]]:
        """The typed parameters, or one line per problem naming the field."""
        if not isinstance(raw, dict):
            return None, ["params must be an object"]
        try:
            return self.Params.model_validate(raw), []
        except ValidationError as err:
            return None, [self._describe(error) for error in err.errors()]

    def check(self, view: ClusterView, params: Any, client: DaemonClient) -> list[str]:
        raise NotImplementedError

    def authority_reasons(self, params: dict, is_admin: bool) -> list[str]:
        """Why this caller may not run these (cleaned) params, beyond the operator role
        every run needs: `check` never sees the caller, so who may do what is asked here,
        when a run is requested and again when it is resumed."""
        return []

    def plan(self, view: ClusterView, params: Any) -> list[Step]:
        raise NotImplementedError

    def settle(self, view: ClusterView, params: Any, client: DaemonClient) -> Any:
        """The params to store with the run: what the plan must not re-decide on a
        resume (an upgrade's node order, each node's previous release) is fixed here."""
        return params

    def rollback(self, params: Any, touched: list[str]) -> list[Step]:
        """Steps that undo the run after a failure or an abort ([] = nothing to undo):
        the runner appends them to the run, so a plan can grow after the request."""
        return []

    def touched(self, step_names: list[str]) -> list[str]:
        """The nodes the started steps changed (those `rollback` must put back)."""
        return []

    def _describe(self, error: Any) -> str:
        where = ".".join(str(part) for part in error["loc"]) or "params"
        fields = self.Params.model_fields
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(repr(name) for name in fields) or "nothing"
            return f"unknown parameter {where[:40]!r}; {self.name} takes only {allowed}"
        if error["type"] == "missing":
            info = fields.get(where)
            about = f": {info.description}" if info and info.description else ""
            return f"{where} is required{about}"
        return f"{where}: {error['msg']}"


def find_member(view: ClusterView, name: str) -> tuple[Member | None, str | None]:
    member = view.member(name)
    if member is None:
        names = ", ".join(sorted(m.name for m in view.members)) or "none"
        return None, f"node {name} is not a member of this cluster (members: {names})"
    return member, None


def reachable_reasons(
    view: ClusterView, member: Member, client: DaemonClient
) -> tuple[NodeHealth | None, list[str]]:
    """The member's own view if both its peers and the console reach it, else reasons."""
    if not member.reachable:
        return None, [f"node {member.name} unreachable (as seen by {view.node})"]
    own, why_not = probe(client, member)
    return own, [why_not] if why_not else []


def checked_member(
    view: ClusterView, name: str, client: DaemonClient
) -> tuple[Member | None, NodeHealth | None, list[str]]:
    """Look the named member up and make sure it answers: (member, its view, reasons)."""
    member, missing = find_member(view, name)
    if member is None:
        return None, None, [missing or ""]
    own, reasons = reachable_reasons(view, member, client)
    return member, own, reasons


def quorum_reasons(view: ClusterView) -> list[str]:
    if not view.has_quorum or not view.leader:
        return [f"the cluster has no quorum right now (as seen by {view.node})"]
    return []
