"""Template filters for a run's progress view (`_progress.html`)."""

from __future__ import annotations

from django import template

from console.runbooks.progress import CHECKOUT, duration

register = template.Library()


@register.filter
def seconds(value: float | None) -> str:
    return duration(value)


@register.filter
def release_label(release: str | None) -> str:
    """A node's release in words: "" is the checked-out tree; None is not known."""
    if release is None:
        return "?"
    return release or CHECKOUT


@register.filter
def state_class(state: str) -> str:
    """A CSS-friendly name for a node's state ("rolled back" -> "rolled-back")."""
    return state.replace(" ", "-")


@register.filter
def title_params(params: dict | None) -> str:
    """A run's params for its title: the values the operator gave ("up-2 soakS=2.0"),
    not the lists and maps the console filled in (the progress shows those)."""
    shown = []
    for key, value in (params or {}).items():
        if isinstance(value, str) and value:
            shown.append(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            shown.append(f"{key}={value:g}")
    return " ".join(shown)
