"""Adding a Kubernetes cluster (admin, page and API), and the node manager its row selects,
driving the STAND-IN API server of tests/console/runbooks/kube_standin.py (no real
Kubernetes API server can run here)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from console.clusters.models import Cluster
from console.events.models import Event
from console.runbooks.nodes import manager_for
from console.runbooks.nodes.kubernetes import KubernetesNodeManager
from tests.console.alerts.support import make_user
from tests.console.backups.test_api import bearer
from tests.console.runbooks.kube_standin import StandInApiServer, statefulset

pytestmark = pytest.mark.django_db

BODY = {
    "name": "prod",
    "seed_urls": ["http://unrdf-daemon-0.unrdf-daemon.unrdf.svc:8080"],
    "kube_namespace": "unrdf",
    "kube_statefulset": "unrdf-daemon",
    "kube_image": "registry.example/unrdf-daemon",
    "kube_token_env": "DAEMON_PROD_KUBE_TOKEN",
}


def test_an_admin_adds_a_kubernetes_cluster_whose_manager_drives_the_statefulset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sts = statefulset("unrdf-daemon", "registry.example/unrdf-daemon:1.0.0")
    with StandInApiServer("unrdf", sts, token="sa-token") as api:
        answer = Client().post(
            "/api/kubernetes-clusters/",
            {**BODY, "kube_api_url": api.url},
            content_type="application/json",
            **bearer("admin"),
        )
        assert answer.status_code == 201, answer.content
        cluster = Cluster.objects.get(name="prod")
        assert cluster.node_manager == "kubernetes"
        assert Event.objects.filter(kind="cluster.added", cluster=cluster).exists()
        monkeypatch.setenv("DAEMON_PROD_KUBE_TOKEN", "sa-token")
        nodes = manager_for(cluster)
        assert isinstance(nodes, KubernetesNodeManager)
        assert nodes.status("unrdf-daemon-2").release == "1.0.0"


def test_an_operator_cannot_add_a_cluster() -> None:
    answer = Client().post(
        "/api/kubernetes-clusters/",
        {**BODY, "kube_api_url": "https://k8s.example:6443"},
        content_type="application/json",
        **bearer("operator"),
    )
    assert answer.status_code == 403
    assert not Cluster.objects.exists()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"kube_token_env": "SECRET_KEY"}, "kube_token_env: must name a DAEMON_"),
        ({"kube_namespace": ""}, "kube_namespace: required"),
        ({"kube_api_url": "file:///etc/passwd"}, "kube_api_url: must be an http(s) URL"),
        ({"seed_urls": ["gopher://x"]}, "seed_urls: 'gopher://x' is not"),
    ],
)
def test_bad_input_is_a_one_line_422(change: dict, complaint: str) -> None:
    body = {**BODY, "kube_api_url": "https://k8s.example:6443", **change}
    answer = Client().post(
        "/api/kubernetes-clusters/", body, content_type="application/json", **bearer("admin")
    )
    assert answer.status_code == 422
    assert complaint in answer.json()["detail"]
    assert "\n" not in answer.json()["detail"]
    assert not Cluster.objects.exists()


def test_the_page_adds_a_cluster_for_an_admin_and_is_refused_to_a_viewer(
    viewer_client: Client,
) -> None:
    assert viewer_client.get("/kubernetes/clusters/new/").status_code == 403
    admin = Client()
    admin.force_login(make_user("boss", "admin"))
    assert b"Add a Kubernetes cluster" in admin.get("/kubernetes/clusters/new/").content
    form = {**BODY, "seed_urls": BODY["seed_urls"][0], "kube_api_url": "https://k8s.example"}
    form |= {"token_env": "DAEMON_TOKEN", "operate_token_env": "DAEMON_OPERATE_TOKEN"}
    form |= {"read_token_env": "DAEMON_READ_TOKEN"}
    answer = admin.post("/kubernetes/clusters/new/", form)
    assert answer.status_code == 302 and answer["Location"] == "/clusters/prod/"
    assert Cluster.objects.get(name="prod").kube_statefulset == "unrdf-daemon"
    assert get_user_model().objects.filter(username="boss").exists()
