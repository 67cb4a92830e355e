"""Adding a Kubernetes-managed cluster to the console: an admin action, as a page
(/kubernetes/clusters/new/) and as REST (POST /api/kubernetes-clusters/).

The row names where the StatefulSet is and which environment variables hold the tokens
(the daemon's `DAEMON_…TOKEN…` pattern for all of them, the API server's service-account
token included: DAEMON_KUBE_TOKEN by default); it never holds a secret. The node manager
(console/runbooks/nodes/kubernetes.py) reads it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from ninja import Field, Router, Schema
from ninja.errors import HttpError
from ninja.responses import Status

from console.accounts.auth import api_auth
from console.clusters.models import Cluster
from console.core.roles import require_role, role_required
from console.events import journal

FIELDS = (
    "name",
    "description",
    "seed_urls",
    "kube_api_url",
    "kube_namespace",
    "kube_statefulset",
    "kube_image",
    "kube_token_env",
    "kube_ca_file",
    "token_env",
    "operate_token_env",
    "read_token_env",
)
REQUIRED = ("kube_api_url", "kube_namespace", "kube_statefulset", "kube_image")


def add_cluster(values: dict[str, Any], user: Any) -> Cluster:
    """Validate and save; ValidationError carries one message per bad field."""
    missing = {key: "required for a Kubernetes cluster" for key in REQUIRED if not values.get(key)}
    if missing:
        raise ValidationError(missing)
    if not str(values["kube_api_url"]).startswith(("https://", "http://")):
        raise ValidationError({"kube_api_url": "must be an http(s) URL"})
    for url in values.get("seed_urls") or []:
        if not str(url).startswith(("https://", "http://")):
            raise ValidationError({"seed_urls": f"{url!r} is not an http(s) URL"})
    cluster = Cluster(node_manager="kubernetes", **{k: v for k, v in values.items() if v != ""})
    # Only what an admin typed: the observed-state fields are the collector's to fill.
    cluster.full_clean(exclude=[f.name for f in Cluster._meta.fields if f.name not in FIELDS])
    with transaction.atomic():
        cluster.save()
        journal.append(
            "cluster.added",
            actor=user.get_username(),
            cluster=cluster,
            node_manager="kubernetes",
            namespace=cluster.kube_namespace,
            statefulset=cluster.kube_statefulset,
        )
    return cluster


def _one_line(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(exc.message_dict.items()))
    return " ".join(exc.messages)


# ---- REST -------------------------------------------------------------------------------
router = Router(auth=api_auth, tags=["clusters"])


class KubeClusterIn(Schema):
    name: str = Field(..., max_length=63)
    description: str = Field("", max_length=200)
    seed_urls: list[str] = Field(default_factory=list, max_length=20)
    kube_api_url: str = Field(..., max_length=200)
    kube_namespace: str = Field(..., max_length=63)
    kube_statefulset: str = Field(..., max_length=63)
    kube_image: str = Field(..., max_length=200)
    kube_token_env: str = Field("DAEMON_KUBE_TOKEN", max_length=64)
    kube_ca_file: str = Field("", max_length=300)
    token_env: str = Field("DAEMON_TOKEN", max_length=64)
    operate_token_env: str = Field("DAEMON_OPERATE_TOKEN", max_length=64)
    read_token_env: str = Field("DAEMON_READ_TOKEN", max_length=64)


class KubeClusterOut(Schema):
    name: str
    node_manager: str
    kube_api_url: str
    kube_namespace: str
    kube_statefulset: str
    kube_image: str
    kube_token_env: str


class Refusal(Schema):
    detail: str


@router.post(
    "/", response={201: KubeClusterOut, 400: Refusal, 401: Refusal, 403: Refusal, 422: Refusal}
)
def create(request: HttpRequest, body: KubeClusterIn) -> Status:
    """Add a Kubernetes-managed cluster (admin)."""
    require_role(request, "admin")
    try:
        return Status(201, add_cluster(body.dict(), request.user))
    except ValidationError as exc:
        raise HttpError(422, _one_line(exc)) from None


# ---- the page ---------------------------------------------------------------------------
class KubeClusterForm(forms.Form):
    name = forms.SlugField(max_length=63)
    description = forms.CharField(max_length=200, required=False)
    seed_urls = forms.CharField(
        required=False,
        widget=forms.Textarea,
        help_text="the nodes' HTTP URLs as the console reaches them, one a line",
    )
    kube_api_url = forms.CharField(max_length=200, label="API server URL")
    kube_namespace = forms.SlugField(max_length=63, label="namespace")
    kube_statefulset = forms.SlugField(max_length=63, label="StatefulSet")
    kube_image = forms.CharField(max_length=200, label="image repository")
    kube_token_env = forms.CharField(max_length=64, initial="DAEMON_KUBE_TOKEN")
    kube_ca_file = forms.CharField(max_length=300, required=False, label="CA bundle path")
    token_env = forms.CharField(max_length=64, initial="DAEMON_TOKEN")
    operate_token_env = forms.CharField(max_length=64, initial="DAEMON_OPERATE_TOKEN")
    read_token_env = forms.CharField(max_length=64, initial="DAEMON_READ_TOKEN")


@role_required("admin")
@require_http_methods(["GET", "POST"])
def new_page(request: HttpRequest) -> HttpResponse:
    form = KubeClusterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        values["seed_urls"] = [u.strip() for u in values["seed_urls"].splitlines() if u.strip()]
        try:
            cluster = add_cluster(values, request.user)
        except ValidationError as exc:
            for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return HttpResponseRedirect(reverse("cluster-detail", args=[cluster.name]))
    return render(request, "dashboard/kube_cluster_new.html", {"form": form}, status=200)
