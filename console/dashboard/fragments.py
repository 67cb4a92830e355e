"""The server-rendered pieces of a cluster's dashboard, and what each needs.

The page renders all of them; the live JS asks for one at a time
(`/clusters/<name>/fragments/<part>/`) when an event says it changed, and swaps it in.
So the HTML on first load and after an update comes from the same template.
"""

from __future__ import annotations

from typing import Any

from console.alerts.services import active_alerts
from console.clusters.models import Cluster
from console.clusters.overview import STALE_AFTER_S, overview_of
from console.events.kinds import DASHBOARD_PARTS
from console.events.models import Event
from console.runbooks.services import recent_runs

LATEST_EVENTS = 15
PARTS = DASHBOARD_PARTS


def releases_of(nodes: Any) -> dict[str, Any]:
    """Which release each reachable node runs; `mixed` names the nodes off the majority's."""
    running: dict[str, list[str]] = {}
    for node in nodes:
        if getattr(node, "release", "") and not getattr(node, "removed", False):
            running.setdefault(node.release, []).append(node.name)
    if len(running) < 2:
        return {"by_release": running, "mixed": False, "differing": []}
    main = max(running, key=lambda name: len(running[name]))
    differing = sorted(f"{n} ({r})" for r, names in running.items() if r != main for n in names)
    return {"by_release": running, "mixed": True, "main": main, "differing": differing}


def part_context(part: str, cluster: Cluster, user: Any) -> dict[str, Any]:
    """The template context one fragment needs (a page asks for all of them)."""
    context: dict[str, Any] = {"cluster": cluster, "user": user, "stale_after_s": STALE_AFTER_S}
    if part in ("summary", "nodes", "actions"):
        view = overview_of(cluster)
        context.update(overview=view, nodes=view.nodes, releases=releases_of(view.nodes))
    if part == "alerts":
        alerts = active_alerts(cluster)
        context.update(alerts=alerts, firing=[a for a in alerts if a.state == "firing"])
    if part == "events":
        latest = Event.objects.filter(cluster=cluster).order_by("-id")[:LATEST_EVENTS]
        context["events"] = list(latest)
    if part == "runs":
        # Stale runs are reaped by the collector each tick, not here: a read never writes.
        context["runs"] = list(recent_runs(cluster))
    return context


def page_context(cluster: Cluster, user: Any) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for part in PARTS:
        context.update(part_context(part, cluster, user))
    return context
