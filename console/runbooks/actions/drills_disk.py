"""`drill_fill_disk`: fill a node's data filesystem past its reserve with a fill file,
see the node refuse writes (507) while staying up, remove the file, see it recover.

Bounded: the drill allocates at most `max_bytes`, and is refused when filling the disk
would take more, so it runs only where the data dir sits on a small filesystem (a
volume of its own, a tmpfs), never against a machine's main disk. The fill file is
removed in a `finally`.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from console.clusters.daemon_client import DaemonClient, DaemonError
from console.runbooks.actions import lifecycle
from console.runbooks.actions.base import (
    NodeName,
    Step,
    StepContext,
    StepFailed,
    find_member,
)
from console.runbooks.actions.drills import (
    ELECTION_BOUND_S,
    DrillAction,
    DrillParams,
    drill_reasons,
)
from console.runbooks.actions.drills_support import (
    Expectation,
    expect,
    verify_and_judge,
    with_writer,
)
from console.runbooks.actions.drills_verify import alert_raised, last_event_id, poll
from console.runbooks.live import ClusterView, url_of
from console.runbooks.nodes import NodeManagerError, faults

MiB = 1 << 20
FULL_TIMEOUT_S = 15.0
ALERT_WAIT_S = 15.0


class FillParams(DrillParams):
    node: NodeName
    max_bytes: int = Field(
        256 * MiB, ge=MiB, le=4096 * MiB, description="the most the drill may allocate"
    )


def disk_of(client: DaemonClient, url: str) -> dict[str, Any]:
    disk = client.get(url, "/health/node").get("disk") or {}
    return disk if isinstance(disk, dict) else {}


def fill_size(disk: dict[str, Any]) -> int | None:
    """Bytes to allocate to bring free space to half the reserve, or None if unknown."""
    free, reserve = disk.get("freeBytes"), disk.get("reserveBytes")
    if not isinstance(free, int) or not isinstance(reserve, int):
        return None
    return max(MiB, free - reserve // 2)


def size_reasons(client: DaemonClient, url: str, name: str, bound: int) -> list[str]:
    try:
        size = fill_size(disk_of(client, url))
    except DaemonError as exc:
        return [f"node {name} did not say how full its disk is: {exc}"]
    if size is None:
        return [f"node {name} does not report its free bytes and reserve; it cannot be filled"]
    if size > bound:
        return [
            f"filling {name}'s disk would take {size // MiB} MiB, above the drill's bound of "
            f"{bound // MiB} MiB; put its data dir on a small filesystem to drill a full disk"
        ]
    return []


def expectation() -> Expectation:
    """The 507 and the node staying up are measured by the drill itself; the node stays
    reachable, so no node event is expected, but the disk alert must be raised (the
    drill keeps the disk full until it is, within `ALERT_WAIT_S`)."""
    return Expectation(
        fault="fill the node's data filesystem past its reserve (writes answer 507, the "
        "node stays up), then free it (it takes writes again)",
        events=(),
        recovery_s=ELECTION_BOUND_S,
        alerts=("disk_usage",),
    )


class DrillFillDisk(DrillAction):
    name = "drill_fill_disk"
    label = "Drill: fill a node's disk"
    Params = FillParams

    def check(self, view: ClusterView, params: FillParams, client: DaemonClient) -> list[str]:
        member, missing = find_member(view, params.node)
        if member is None:
            return [missing or ""]
        reasons = drill_reasons(view, client, params.confirm_production)
        return reasons or size_reasons(client, url_of(member), member.name, params.max_bytes)

    def plan(self, view: ClusterView, params: FillParams) -> list[Step]:
        view.by_name[params.node]
        return [
            Step("state the expectation", expect(expectation())),
            Step(f"fill {params.node}'s disk, measure, free it", _fill(params)),
            Step("verify and judge", verify_and_judge(expectation())),
        ]


def _write_status(ctx: StepContext, url: str) -> int | None:
    try:
        return ctx.client.call("POST", url, "/execute/drill-probe")[0]
    except DaemonError as exc:
        return exc.status


def _fill(params: FillParams) -> Any:
    def run(ctx: StepContext) -> dict[str, Any]:
        nodes = lifecycle.manager(ctx)
        url = nodes.status(params.node).url

        def inject_observe_heal() -> dict[str, Any]:
            size = fill_size(disk_of(ctx.client, url))
            if size is None or size > params.max_bytes:
                raise StepFailed(f"{params.node}'s disk cannot be filled within the bound")
            observed: dict[str, Any] = {"filled": params.node, "target": params.node}
            # One probe of our own while full (`_write_status`): it may commit if the
            # node was not full after all, and the checker must allow for it.
            observed.update({"bytes": size, "probes": 1})
            since = last_event_id(ctx.cluster)
            try:
                faults.fill(nodes, params.node, size)
                ctx.wait_until(
                    lambda: {} if disk_of(ctx.client, url).get("full") else None,
                    FULL_TIMEOUT_S,
                    f"{params.node} to report a full disk",
                )
                observed["writeStatusWhileFull"] = _write_status(ctx, url)
                observed["upWhileFull"] = nodes.status(params.node).running
                # The alert reads chart samples (one a second): hold the fill until it
                # is raised, or the bound passes (the verify step then says it was not).
                full_at = time.monotonic()
                raised = poll(
                    ctx, lambda: alert_raised(ctx.cluster, since, "disk_usage"), ALERT_WAIT_S
                )
                observed["alertRaisedAfterS"] = (
                    round(time.monotonic() - full_at, 2) if raised else None
                )
            except NodeManagerError as exc:
                raise StepFailed(str(exc)) from None
            finally:
                faults.unfill(nodes, params.node)
            freed = time.monotonic()
            ctx.wait_until(
                lambda: None if disk_of(ctx.client, url).get("full") else {},
                FULL_TIMEOUT_S + ELECTION_BOUND_S,
                f"{params.node} to take writes again",
            )
            lifecycle.wait_caught_up(params.node)(ctx)
            observed["recoveryS"] = round(time.monotonic() - freed, 2)
            if observed["writeStatusWhileFull"] != 507 or not observed["upWhileFull"]:
                observed["recoveryS"] = None  # not the behaviour expected: the verdict fails
            return observed

        return with_writer(ctx, inject_observe_heal)

    return run
