"""The run page's controls by the run's state: pause, resume, abort and promote, each
posted from the page's JS (the answer is the run's fragment, no reload)."""

from __future__ import annotations

import pytest
from django.test import Client

from console.clusters.models import Cluster
from console.runbooks.models import RunbookRun

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_broker")]
CONTROLS = ("run-cancel", "run-pause", "run-resume", "run-promote", "run-abort")


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(name="quiet", seed_urls=["http://127.0.0.1:9"])


def page_client(user) -> Client:
    client = Client(headers={"X-Requested-With": "fetch"})
    client.force_login(user)
    return client


def controls(html: str) -> set[str]:
    return {name for name in CONTROLS if f'data-testid="{name}"' in html}


@pytest.mark.parametrize(
    ("status", "hold", "shown"),
    [
        ("running", "", {"run-cancel", "run-pause"}),
        ("pausing", "paused by olivia", {"run-resume", "run-abort"}),
        ("paused", "paused by olivia before step 3 (stop n1)", {"run-resume", "run-abort"}),
        ("paused", "awaiting promotion: step 23 (switch ...) is the point of no return",
         {"run-promote", "run-abort"}),
        ("failed", "", {"run-resume"}),
        ("rolled_back", "", set()),
    ],
)  # fmt: skip
def test_the_run_page_offers_the_controls_its_state_allows(
    cluster: Cluster, operator, status: str, hold: str, shown: set[str]
) -> None:
    run = RunbookRun.objects.create(
        cluster=cluster, action="upgrade", status=status, hold_reason=hold
    )

    html = page_client(operator).get(f"/runbooks/runs/{run.id}/steps/").content.decode()

    assert controls(html) == shown
    if hold:
        assert hold in html


def test_a_viewer_sees_no_controls_and_may_not_pause(cluster: Cluster, viewer) -> None:
    run = RunbookRun.objects.create(cluster=cluster, action="upgrade", status="running")
    client = page_client(viewer)

    assert controls(client.get(f"/runbooks/runs/{run.id}/").content.decode()) == set()
    assert client.post(f"/runbooks/runs/{run.id}/pause/").status_code == 403
    run.refresh_from_db()
    assert run.status == "running"


def test_pause_then_abort_from_the_page_answer_with_the_run_fragment(
    cluster: Cluster, operator
) -> None:
    run = RunbookRun.objects.create(cluster=cluster, action="upgrade", status="running")
    client = page_client(operator)

    paused = client.post(f"/runbooks/runs/{run.id}/pause/")
    promote = client.post(f"/runbooks/runs/{run.id}/promote/")
    aborted = client.post(f"/runbooks/runs/{run.id}/abort/")

    assert paused.status_code == 200 and 'data-status="pausing"' in paused.content.decode()
    assert promote.status_code == 409
    assert "can be promoted" in promote.content.decode()
    assert aborted.status_code == 200 and 'data-status="cancelling"' in aborted.content.decode()
    run.refresh_from_db()
    assert (run.status, run.cancel_requested_by_id) == ("cancelling", operator.id)


def test_promote_from_the_page_queues_a_run_awaiting_promotion_again(
    cluster: Cluster, operator
) -> None:
    run = RunbookRun.objects.create(
        cluster=cluster, action="upgrade", status="paused",
        hold_reason="awaiting promotion: step 2 (switch) is the point of no return",
    )  # fmt: skip

    response = page_client(operator).post(f"/runbooks/runs/{run.id}/promote/")

    assert response.status_code == 200
    run.refresh_from_db()
    assert (run.status, run.promoted_by_id) == ("queued", operator.id)
    assert 'data-active="true"' in response.content.decode()
