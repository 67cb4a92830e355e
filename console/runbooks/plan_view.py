"""What the dry-run of a multi-node run says besides its steps: the order of the nodes,
how long each node's gates must hold, how long a node may take to become healthy.

Read back from the planned step names (`progress.parse_step`) and the action's own
parameter schema, so the Check button shows the plan exactly as the run will do it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.runbooks.actions import ACTIONS
from console.runbooks.progress import parse_step


@dataclass(frozen=True)
class PlanView:
    order: list[str]  # the nodes, in the order the run takes them
    soak_s: float | None  # each node's soak: how long its gates must hold
    node_deadline_s: float | None  # how long one node may take to become healthy


def plan_view(action: str, params: Any, steps: list[str]) -> PlanView | None:
    """None for a run that acts on fewer than two nodes (nothing to order)."""
    order: list[str] = []
    for name in steps:
        node = parse_step(name).node
        if node is not None and node not in order:
            order.append(node)
    if len(order) < 2:
        return None
    typed = ACTIONS[action].parse(params)[0] if action in ACTIONS else None
    return PlanView(
        order=order,
        soak_s=getattr(typed, "soakS", None),
        node_deadline_s=getattr(typed, "nodeDeadlineS", None),
    )
