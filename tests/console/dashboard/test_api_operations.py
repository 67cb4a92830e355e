"""Operations through the API against a real daemon cluster: define, list, execute, delete,
each write journaled with its actor; daemon refusals keep their 4xx, silence is a 502."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from console.accounts.models import ApiToken
from console.clusters.models import Cluster
from console.core.roles import set_role
from console.events.models import Event
from tests.cluster_harness import ADMIN_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster
from tests.conftest import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.cluster]

OPERATION = {"id": "test-op", "name": "Test Operation", "handler": 'console.log("success")'}


@pytest.fixture
def cluster(daemons: DaemonCluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    monkeypatch.setenv("DAEMON_TOKEN", ADMIN_TOKEN)
    # A dead first URL: the console must move on to a node that answers.
    dead = f"http://127.0.0.1:{free_port()}"
    return Cluster.objects.create(name="c1", seed_urls=[dead, *(n.url for n in daemons.nodes)])


@pytest.fixture
def operator() -> Client:
    user = get_user_model().objects.create_user("olga", password="x" * 12)
    set_role(user, "operator")
    _, raw = ApiToken.issue(user, "test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post(client: Client, path: str, body: object) -> object:
    return client.post(path, body, content_type="application/json")


def test_an_operator_defines_lists_and_executes_an_operation(cluster, operator) -> None:
    op = {**OPERATION, "id": "define-run"}
    defined = post(operator, "/api/clusters/c1/operations", op)
    assert defined.status_code == 201, defined.content
    assert defined.json()["id"] == "define-run"
    assert post(operator, "/api/clusters/c1/operations", op).status_code == 200  # redefined
    listed = operator.get("/api/clusters/c1/operations").json()
    assert "define-run" in [o["id"] for o in listed]
    assert operator.get("/api/clusters/c1/operations/define-run").json()["name"] == op["name"]
    ran = post(operator, "/api/clusters/c1/operations/define-run/execute", {"params": {"a": 1}})
    assert ran.status_code == 200, ran.content
    record = ran.json()
    assert record["status"] == "success"
    events = list(Event.objects.filter(kind__startswith="operation.").order_by("id"))
    assert [(e.kind, e.actor) for e in events] == [
        ("operation.defined", "olga"),
        ("operation.defined", "olga"),
        ("operation.executed", "olga"),
    ]
    assert events[-1].payload == {
        "operation_id": "define-run",
        "execution_id": record["id"],
        "status": "success",
    }
    assert events[-1].cluster == cluster


def test_execute_without_a_body_runs_with_no_params(cluster, operator) -> None:
    post(operator, "/api/clusters/c1/operations", {**OPERATION, "id": "no-body"})
    empty = operator.post(
        "/api/clusters/c1/operations/no-body/execute", "", content_type="application/json"
    )
    assert empty.status_code == 200, empty.content


def test_deleting_an_operation_is_journaled(cluster, operator) -> None:
    post(operator, "/api/clusters/c1/operations", {**OPERATION, "id": "short-lived"})
    assert operator.delete("/api/clusters/c1/operations/short-lived").status_code == 200
    assert operator.get("/api/clusters/c1/operations/short-lived").status_code == 404
    event = Event.objects.get(kind="operation.deleted")
    assert (event.actor, event.payload) == ("olga", {"operation_id": "short-lived"})


def test_the_daemons_refusal_comes_back_as_its_4xx_in_one_line(cluster, operator) -> None:
    bad = post(operator, "/api/clusters/c1/operations", {**OPERATION, "handler": {"kind": "eval"}})
    assert bad.status_code == 400
    assert "kind" in bad.json()["detail"] and "\n" not in bad.json()["detail"]
    missing = post(operator, "/api/clusters/c1/operations/never-defined/execute", {})
    assert missing.status_code == 404
    assert not Event.objects.exists()


def test_input_the_daemon_would_refuse_is_refused_before_it_is_sent(cluster, operator) -> None:
    response = post(operator, "/api/clusters/c1/operations", {**OPERATION, "id": "../etc"})
    assert response.status_code == 422
    assert "id" in response.json()["error"]


def test_a_cluster_with_no_node_answering_is_a_502_with_one_line(operator, monkeypatch) -> None:
    Cluster.objects.create(name="gone", seed_urls=[f"http://127.0.0.1:{free_port()}"])
    for response in (
        operator.get("/api/clusters/gone/operations"),
        post(operator, "/api/clusters/gone/operations/x/execute", {}),
    ):
        assert response.status_code == 502
        detail = response.json()["detail"]
        assert "127.0.0.1" in detail and "\n" not in detail
    assert not Event.objects.exists()


def test_a_cluster_with_no_known_url_is_a_503(operator) -> None:
    Cluster.objects.create(name="empty")
    response = operator.get("/api/clusters/empty/operations")
    assert response.status_code == 503
    assert response.json()["detail"] == "cluster empty has no known node URLs"
