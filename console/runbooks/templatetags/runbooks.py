"""Template helpers for the runbook pieces the dashboard includes."""

from __future__ import annotations

from typing import Any

from django import template

from console.clusters.models import Release
from console.core.roles import has_role
from console.runbooks.actions import LABELS
from console.runbooks.models import RunbookStep

register = template.Library()


@register.filter
def can_run_runbooks(user: Any) -> bool:
    """Operators and admins see the buttons; viewers see none (and get 403 anyway)."""
    return has_role(user, "operator")


@register.filter
def action_label(action: str) -> str:
    return LABELS.get(action, action)


@register.filter
def gate_value(value: Any) -> str:
    """A gate's measured value, compact: {"lagMs": 3, ...} as lagMs=3, lists joined."""
    if isinstance(value, dict):
        return ", ".join(f"{key}={item}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


@register.filter
def zip_gates(steps: list[str], gates: list[list[str]]) -> list[tuple[str, list[str]]]:
    """Each planned step with the gates it checks first (none for a refused plan)."""
    return [(step, gates[i] if i < len(gates) else []) for i, step in enumerate(steps)]


@register.filter
def steps_done(run: Any) -> int:
    # Works on prefetched steps without another query.
    return sum(1 for step in run.steps.all() if step.status in RunbookStep.DONE_STATES)


@register.simple_tag
def upgrade_releases() -> list[str]:
    """The releases the upgrade picker offers: those nodes may run (verified or active)."""
    return list(
        Release.objects.filter(status__in=(Release.Status.VERIFIED, Release.Status.ACTIVE))
        .order_by("-id")
        .values_list("name", flat=True)[:20]
    )
