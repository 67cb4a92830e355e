"""The operations page against a real daemon cluster: operators define and execute,
each action journaled with its actor; viewers see no buttons and get 403."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from console.clusters.models import Cluster
from console.events.models import Event
from tests.cluster_harness import ADMIN_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster

pytestmark = [pytest.mark.django_db, pytest.mark.cluster]

TOKEN_ENV = "DAEMON_TOKEN_OPERATIONS_TEST"


@pytest.fixture
def prod(daemons: DaemonCluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    monkeypatch.setenv(TOKEN_ENV, ADMIN_TOKEN)
    return Cluster.objects.create(
        name="prod", seed_urls=[n.url for n in daemons.nodes], token_env=TOKEN_ENV
    )


def signed_in(role: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    user = get_user_model().objects.create_user(f"{role}-user", password="x" * 12)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return client


def post_form(client: Client, data: dict[str, str]) -> object:
    """POST like a browser: with the CSRF token the page set."""
    client.get("/clusters/prod/operations/")
    token = client.cookies["csrftoken"].value
    return client.post("/clusters/prod/operations/", {**data, "csrfmiddlewaretoken": token})


DEFINITION = {
    "action": "define",
    "id": "nightly-report",
    "name": "Nightly report",
    "handler_kind": "log",
    "handler_argument": "report done",
    "timeout_ms": "5000",
}


def test_an_operator_defines_an_operation_and_the_journal_names_them(
    prod: Cluster, daemons: DaemonCluster
) -> None:
    operator = signed_in("operator")
    response = post_form(operator, DEFINITION)
    assert response.status_code == 302
    stored = daemons.get(daemons.leader(), "/operations/nightly-report").json()
    assert stored["name"] == "Nightly report"
    event = Event.objects.get(kind="operation.defined")
    assert (event.actor, event.cluster, event.payload["operation_id"]) == (
        "operator-user",
        prod,
        "nightly-report",
    )
    page = operator.get("/clusters/prod/operations/").content.decode()
    assert 'data-testid="operation-nightly-report"' in page
    assert 'data-testid="execute-nightly-report"' in page


def test_an_operator_executes_an_operation_and_sees_the_outcome(
    prod: Cluster, daemons: DaemonCluster
) -> None:
    operator = signed_in("operator")
    post_form(operator, DEFINITION)
    response = post_form(operator, {"action": "execute", "operation": "nightly-report"})
    assert response.status_code == 302
    event = Event.objects.get(kind="operation.executed")
    assert event.actor == "operator-user"
    assert event.payload["status"] == "success"
    history = daemons.get(daemons.leader(), "/operations/nightly-report/history").json()
    assert event.payload["execution_id"] in {record["id"] for record in history}
    page = operator.get("/clusters/prod/operations/").content.decode()
    assert "executed nightly-report: success" in page


def test_a_viewer_sees_no_buttons_and_cannot_post(prod: Cluster, daemons: DaemonCluster) -> None:
    viewer = signed_in("viewer")
    page = viewer.get("/clusters/prod/operations/").content.decode()
    assert 'data-testid="define-operation"' not in page
    assert 'data-testid="execute-' not in page
    response = post_form(viewer, {**DEFINITION, "id": "viewer-op"})
    assert response.status_code == 403
    response = post_form(viewer, {"action": "execute", "operation": "nightly-report"})
    assert response.status_code == 403
    assert not Event.objects.filter(kind__startswith="operation.").exists()
    assert daemons.get(daemons.leader(), "/operations/viewer-op").status_code == 404


def test_a_post_without_the_csrf_token_is_refused(prod: Cluster) -> None:
    operator = signed_in("operator")
    response = operator.post("/clusters/prod/operations/", DEFINITION)
    assert response.status_code == 403
    assert not Event.objects.exists()


def test_a_bad_definition_is_a_400_that_says_which_field(prod: Cluster) -> None:
    operator = signed_in("operator")
    response = post_form(operator, {**DEFINITION, "id": "no spaces!", "handler_kind": "sleep"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "letters, digits" in text
    assert "a sleep handler needs a whole number of ms" in text
    assert not Event.objects.exists()


def test_executing_an_unknown_operation_passes_on_the_daemons_404(prod: Cluster) -> None:
    operator = signed_in("operator")
    response = post_form(operator, {"action": "execute", "operation": "no-such-op"})
    assert response.status_code == 404  # the page again, with the daemon's reason
    assert "execute no-such-op:" in response.content.decode()
    assert not Event.objects.filter(kind="operation.executed").exists()


def test_with_no_node_answering_the_page_says_so_instead_of_hanging() -> None:
    Cluster.objects.create(name="prod", seed_urls=["http://127.0.0.1:9"], token_env=TOKEN_ENV)
    response = signed_in("viewer").get("/clusters/prod/operations/")
    assert response.status_code == 200
    assert 'data-testid="daemon-error"' in response.content.decode()
