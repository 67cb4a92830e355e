"""The notifications page: channels, the form to add one and test buttons (admins),
and the latest deliveries. Thin: services validate and journal."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.clusters.models import Cluster
from console.core.roles import has_role
from console.notifications import services
from console.notifications.models import KINDS, ROUTES, Channel, Delivery

RECENT = 50


class ChannelForm(forms.Form):
    name = forms.SlugField(max_length=63)
    kind = forms.ChoiceField(choices=KINDS)
    cluster = forms.CharField(required=False, max_length=63)
    routes = forms.MultipleChoiceField(
        choices=[(r, r) for r in ROUTES], required=False, widget=forms.CheckboxSelectMultiple
    )
    secret_env = forms.CharField(required=False, max_length=64)
    url = forms.CharField(required=False, max_length=200)
    recipients = forms.CharField(required=False, max_length=500)
    quiet_start_hour = forms.IntegerField(required=False, min_value=0, max_value=23)
    quiet_end_hour = forms.IntegerField(required=False, min_value=0, max_value=23)


def _admin(request: HttpRequest) -> None:
    if not has_role(request.user, services.ADMIN_ROLE):
        raise PermissionDenied("this needs the admin role")


@login_required
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    return _render(request, ChannelForm())


def _render(request: HttpRequest, form: ChannelForm, status: int = 200) -> HttpResponse:
    context = {
        "channels": Channel.objects.select_related("cluster"),
        "deliveries": Delivery.objects.select_related("channel")[:RECENT],
        "clusters": Cluster.objects.all(),
        "can_admin": has_role(request.user, services.ADMIN_ROLE),
        "form": form,
    }
    return render(request, "notifications/page.html", context, status=status)


@login_required
@require_POST
def add(request: HttpRequest) -> HttpResponse:
    _admin(request)
    form = ChannelForm(request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        cluster = data.pop("cluster") or ""
        try:
            channel = services.save_channel(None, data, cluster, actor=request.user.get_username())
        except services.ChannelError as err:
            form.add_error(None, err.message)
        else:
            messages.success(request, f"channel {channel.name} added")
            return HttpResponseRedirect(reverse("notifications"))
    return _render(request, form, status=400)  # the page again, with the form's errors


@login_required
@require_POST
def test(request: HttpRequest, channel_id: int) -> HttpResponse:
    _admin(request)
    channel = get_object_or_404(Channel, pk=channel_id)
    delivery = services.send_test(channel, actor=request.user.get_username())
    messages.success(request, f"test message queued for {channel.name} (delivery #{delivery.pk})")
    return HttpResponseRedirect(reverse("notifications"))


@login_required
@require_POST
def delete(request: HttpRequest, channel_id: int) -> HttpResponse:
    _admin(request)
    channel = get_object_or_404(Channel, pk=channel_id)
    services.delete_channel(channel, actor=request.user.get_username())
    messages.success(request, f"channel {channel.name} deleted")
    return HttpResponseRedirect(reverse("notifications"))
