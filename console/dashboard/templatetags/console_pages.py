"""Small template helpers shared by the console's pages: the nav and value ages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone

from console.clusters.models import Cluster
from console.core.roles import role_of

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_cluster(context: template.Context) -> Cluster | None:
    """The cluster the History and Operations links point at: the page's, else the first."""
    cluster = context.get("cluster")
    if isinstance(cluster, Cluster):
        return cluster
    return Cluster.objects.first()


@register.filter
def role(user: Any) -> str:
    return role_of(user) or ""


@register.filter
def age_s(value: datetime | None) -> int | None:
    """Whole seconds since `value`: the first render of an age the JS then keeps fresh."""
    if value is None:
        return None
    return max(0, int((timezone.now() - value).total_seconds()))


@register.inclusion_tag("dashboard/_age.html", takes_context=True)
def age(context: template.Context, value: datetime | None) -> dict[str, Any]:
    """`12 s ago`, marked stale after the page's threshold (static/console.js updates it)."""
    seconds = age_s(value)
    stale_after = context.get("stale_after_s", 5)
    return {
        "value": value,
        "seconds": seconds,
        "stale": seconds is None or seconds > stale_after,
        "stale_after_s": stale_after,
    }
