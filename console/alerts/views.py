"""The alerts page and its two forms (acknowledge, silence). Thin: services decide."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from console.alerts import services
from console.clusters.models import Cluster
from console.core.roles import has_role

SILENCE_CHOICES_MIN = (15, 60, 240, 1440)
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,63}")


@login_required
@require_GET
def alerts_page(request: HttpRequest) -> HttpResponse:
    cluster = None
    name = request.GET.get("cluster")
    if name and "\x00" not in name:
        cluster = Cluster.objects.filter(name=name).first()
    context = {
        "cluster": cluster,
        "clusters": Cluster.objects.all(),
        "active": services.active_alerts(cluster),
        "resolved": services.recent_resolved(cluster),
        "can_act": has_role(request.user, services.ACTING_ROLE),
        "now": timezone.now(),
        "silence_choices": SILENCE_CHOICES_MIN,
        "comment_max": services.COMMENT_MAX_CHARS,
    }
    return render(request, "alerts/list.html", context)


@login_required
@require_POST
def ack(request: HttpRequest, alert_id: int) -> HttpResponse:
    _require_operator(request)

    def ack_it() -> object:
        alert = services.get_alert(alert_id)
        comment = request.POST.get("comment", "")
        return services.acknowledge(alert, user=request.user, comment=comment)

    return _act(request, ack_it, done="Acknowledged.")


@login_required
@require_POST
def silence(request: HttpRequest, alert_id: int) -> HttpResponse:
    _require_operator(request)

    def silence_it() -> object:
        alert = services.get_alert(alert_id)
        until, minutes = _silence_input(request)
        return services.silence(alert, user=request.user, until=until, minutes=minutes)

    return _act(request, silence_it, done="Silenced.")


def _act(request: HttpRequest, action: Callable[[], object], done: str) -> HttpResponse:
    """Run the action; a refusal goes back to the page as a message (404 stays a 404)."""
    try:
        action()
    except services.AlertActionRefused as refusal:
        if refusal.status == 404:
            raise Http404(refusal.message) from None
        messages.error(request, refusal.message)
    else:
        messages.success(request, done)
    return HttpResponseRedirect(_back(request), status=303)


def _silence_input(request: HttpRequest) -> tuple[dt.datetime | None, int | None]:
    """The form offers a preset duration or a time (datetime-local, read as UTC)."""
    raw_until = request.POST.get("until", "").strip()
    if raw_until:
        try:
            until = parse_datetime(raw_until)
        except ValueError:
            until = None
        if until is None:
            raise services.AlertActionRefused("until is not a date and time")
        return until, None
    raw_minutes = request.POST.get("minutes", "").strip()
    if not raw_minutes.isdigit() or len(raw_minutes) > 9:
        raise services.AlertActionRefused("choose how long to silence for")
    return None, int(raw_minutes)


def _require_operator(request: HttpRequest) -> None:
    if not has_role(request.user, services.ACTING_ROLE):
        raise PermissionDenied(f"this needs the {services.ACTING_ROLE} role")


def _back(request: HttpRequest) -> str:
    """Back to the page, keeping its cluster filter (a slug, so safe in a URL)."""
    url = reverse("alerts")
    cluster = request.POST.get("cluster", "")
    return f"{url}?cluster={cluster}" if SLUG.fullmatch(cluster) else url
