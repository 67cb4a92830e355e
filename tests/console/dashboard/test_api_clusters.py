"""/api/clusters: clusters with nodes, leader, quorum and fault tolerance; docs offline."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from console.clusters.models import Cluster, Node

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster() -> Cluster:
    cluster = Cluster.objects.create(
        name="c1",
        leader_name="unrdf-daemon-0",
        term=4,
        commit_index=99,
        has_quorum=True,
        cluster_size=3,
        replication_lag_ms=0.8,
        last_polled_at=timezone.now(),
    )
    for i in range(3):
        Node.objects.create(
            cluster=cluster,
            name=f"unrdf-daemon-{i}",
            http_url=f"http://127.0.0.1:{8080 + i}",
            role="leader" if i == 0 else "follower",
            reachable=True,
            term=4,
            commit_index=99,
            lag_ms=0.0 if i == 0 else 0.8,
            version="0.1.0",
            last_seen_at=timezone.now(),
        )
    return cluster


def test_a_cluster_shows_its_nodes_leader_quorum_and_fault_tolerance(
    viewer_client, cluster
) -> None:
    body = viewer_client.get("/api/clusters/c1").json()
    assert body["leader"] == "unrdf-daemon-0"
    assert body["has_quorum"] is True
    assert (body["cluster_size"], body["quorum_size"], body["fault_tolerance"]) == (3, 2, 1)
    assert body["fault_tolerance_text"] == "can lose 1 node"
    assert [n["name"] for n in body["nodes"]] == [f"unrdf-daemon-{i}" for i in range(3)]
    assert [n["is_leader"] for n in body["nodes"]] == [True, False, False]
    assert body["nodes"][1]["lag_ms"] == 0.8


def test_an_unreachable_node_lowers_the_fault_tolerance(viewer_client, cluster) -> None:
    Node.objects.filter(name="unrdf-daemon-2").update(reachable=False)
    body = viewer_client.get("/api/clusters/c1").json()
    assert body["fault_tolerance_text"] == "can lose 0 nodes"
    nodes = viewer_client.get("/api/clusters/c1/nodes").json()
    assert [n["reachable"] for n in nodes] == [True, True, False]


def test_clusters_are_listed(viewer_client, cluster) -> None:
    assert [c["name"] for c in viewer_client.get("/api/clusters").json()] == ["c1"]


def test_an_unknown_cluster_is_a_404_with_a_message(viewer_client) -> None:
    for path in ("/api/clusters/nope", "/api/clusters/nope/nodes", "/api/clusters/nope/operations"):
        response = viewer_client.get(path)
        assert response.status_code == 404, path
        assert response.json()["detail"] == "no cluster named 'nope'"


def test_the_api_needs_credentials_but_health_does_not() -> None:
    assert Client().get("/api/clusters").status_code == 401
    assert Client().get("/api/health").status_code == 200


def test_the_api_docs_load_only_local_assets() -> None:
    page = Client().get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, html
    assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    for url in urls:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a local static file"
    assert '"validatorUrl": null' in html  # no badge fetched from the internet


def test_the_openapi_schema_lists_every_area() -> None:
    paths = Client().get("/api/openapi.json").json()["paths"]
    for path in (
        "/api/clusters",
        "/api/clusters/{name}/nodes",
        "/api/clusters/{name}/executions",
        "/api/clusters/{name}/operations",
        "/api/clusters/{name}/operations/{op_id}/execute",
        "/api/events",
        "/api/tokens",
        "/api/alerts",
    ):
        assert path in paths, path
