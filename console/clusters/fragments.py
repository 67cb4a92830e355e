"""The server-rendered pieces of a cluster's dashboard, and what each needs.

The page renders all of them; the live JS asks for one at a time
(`/clusters/<name>/fragments/<part>/`) when an event says it changed, and swaps it in.
So the HTML on first load and after an update comes from the same template.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.template import TemplateDoesNotExist
from django.template.loader import get_template

from console.accounts.roles import has_role
from console.alerts.services import active_alerts
from console.clusters.models import Cluster
from console.clusters.overview import STALE_AFTER_S, overview_of
from console.events.models import Event

LATEST_EVENTS = 15
PARTS = ("summary", "nodes", "alerts", "events", "runs", "actions")

# Pieces other apps provide; the page works (without them) before they exist.
RUNS_TEMPLATE = "runbooks/_runs.html"
ACTIONS_TEMPLATE = "runbooks/_actions.html"
ALERTS_TEMPLATE = "alerts/_strip.html"


@cache
def template_exists(name: str) -> bool:
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return False
    return True


def _recent_runs(cluster: Cluster) -> list:
    from console.runbooks import services

    # No reaping here: the collector's tick ends a dead worker's run, not a page view.
    return list(services.recent_runs(cluster))


def part_context(part: str, cluster: Cluster, user: Any) -> dict[str, Any]:
    """The template context one fragment needs (a page asks for all of them)."""
    context: dict[str, Any] = {"cluster": cluster, "user": user, "stale_after_s": STALE_AFTER_S}
    if part in ("summary", "nodes", "actions"):
        view = overview_of(cluster)
        context.update(overview=view, nodes=view.nodes)
    if part == "alerts":
        alerts = active_alerts(cluster)
        context.update(
            alerts=alerts,
            firing=[a for a in alerts if a.state == "firing"],
            alerts_template=ALERTS_TEMPLATE if template_exists(ALERTS_TEMPLATE) else None,
        )
    if part == "events":
        latest = Event.objects.filter(cluster=cluster).order_by("-id")[:LATEST_EVENTS]
        context["events"] = list(latest)
    if part == "runs":
        context.update(
            runs=_recent_runs(cluster),
            runs_template=RUNS_TEMPLATE if template_exists(RUNS_TEMPLATE) else None,
        )
    if part == "actions":
        show = has_role(user, "operator") and template_exists(ACTIONS_TEMPLATE)
        context["actions_template"] = ACTIONS_TEMPLATE if show else None
    return context


def page_context(cluster: Cluster, user: Any) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for part in PARTS:
        context.update(part_context(part, cluster, user))
    return context
