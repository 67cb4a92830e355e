"""The runbook buttons, the run pages and the REST API, by role."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import Client

from console.accounts.models import ApiToken
from console.clusters.models import Cluster
from console.events.models import Event
from console.runbooks.models import RunbookRun, RunbookStep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_broker")]


@pytest.fixture
def quiet_cluster() -> Cluster:
    """A registered cluster with no daemon behind it: enough for pages and permissions."""
    cluster = Cluster.objects.create(name="quiet", seed_urls=["http://127.0.0.1:9"])
    cluster.nodes.create(name="unrdf-daemon-0", http_url="http://127.0.0.1:9", role="leader")
    cluster.nodes.create(name="unrdf-daemon-1", http_url="http://127.0.0.1:9", draining=True)
    return cluster


def actions_html(cluster: Cluster, user) -> str:
    return render_to_string(
        "runbooks/_actions.html", {"cluster": cluster, "nodes": cluster.nodes.all(), "user": user}
    )


def test_operators_see_check_and_run_buttons_for_each_action(quiet_cluster, operator) -> None:
    html = actions_html(quiet_cluster, operator)
    for testid in [
        "runbook-snapshot-unrdf-daemon-0",
        "runbook-drain-unrdf-daemon-0",
        "runbook-undrain-unrdf-daemon-1",  # it is draining: undrain, not drain
        "runbook-transfer_leader-unrdf-daemon-1",
        "runbook-snapshot-all",
    ]:
        assert f'data-testid="{testid}"' in html
    assert "runbook-transfer_leader-unrdf-daemon-0" not in html  # already the leader
    assert html.count('value="1" class="secondary">Check') == html.count(">Run</button>") == 6


def test_viewers_see_no_buttons(quiet_cluster, viewer) -> None:
    assert actions_html(quiet_cluster, viewer).strip() == ""


def test_a_viewer_posting_a_run_gets_403_and_nothing_happens(quiet_cluster, viewer) -> None:
    client = Client()
    client.force_login(viewer)
    response = client.post(
        "/runbooks/clusters/quiet/request/", {"action": "snapshot", "node": "all"}
    )
    assert response.status_code == 403
    assert not RunbookRun.objects.exists() and not Event.objects.exists()


def test_anonymous_users_are_sent_to_login(quiet_cluster) -> None:
    response = Client().post("/runbooks/clusters/quiet/request/", {"action": "snapshot"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert Client().get("/runbooks/runs/1/").status_code == 302


def test_a_post_without_the_csrf_token_is_refused(quiet_cluster, operator) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post("/runbooks/clusters/quiet/request/", {"action": "snapshot"})
    assert response.status_code == 403
    assert not RunbookRun.objects.exists()


def test_the_check_button_shows_the_verdict_inline(quiet_cluster, operator) -> None:
    client = Client()
    client.force_login(operator)
    response = client.post(
        "/runbooks/clusters/quiet/request/",
        {"action": "drain", "node": "unrdf-daemon-0", "dry_run": "1"},
        headers={"X-Requested-With": "fetch"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-ok="false"' in html
    assert "no node of cluster quiet answered; is it running?" in html
    assert not RunbookRun.objects.exists()
    assert Event.objects.get().payload["dry_run"] is True


def test_a_refused_run_without_js_comes_back_with_the_reason(quiet_cluster, operator) -> None:
    client = Client()
    client.force_login(operator)
    response = client.post(
        "/runbooks/clusters/quiet/request/", {"action": "snapshot", "node": "all"}, follow=True
    )
    assert b"snapshot: refused: no node of cluster quiet answered" in response.content
    assert RunbookRun.objects.get().status == "refused"


def test_an_unknown_action_is_a_400(quiet_cluster, operator) -> None:
    client = Client()
    client.force_login(operator)
    response = client.post("/runbooks/clusters/quiet/request/", {"action": "reboot"})
    assert response.status_code == 400


def test_the_run_page_shows_each_step_with_its_status(quiet_cluster, viewer) -> None:
    run = RunbookRun.objects.create(
        cluster=quiet_cluster, action="drain", params={"node": "unrdf-daemon-0"}, status="failed",
        error="step 2 failed: gave up",
    )  # fmt: skip
    RunbookStep.objects.create(run=run, position=1, name="ask unrdf-daemon-0", status="succeeded")
    RunbookStep.objects.create(run=run, position=2, name="wait for it", status="failed")
    client = Client()
    client.force_login(viewer)

    html = client.get(f"/runbooks/runs/{run.id}/").content.decode()

    assert f"Run #{run.id}: Drain unrdf-daemon-0" in html
    assert 'data-position="1" data-status="succeeded"' in html
    assert 'data-position="2" data-status="failed"' in html
    assert "step 2 failed: gave up" in html
    assert 'data-active="false"' in html  # a finished run is not polled


def test_the_runs_list_shows_progress(quiet_cluster, viewer) -> None:
    run = RunbookRun.objects.create(cluster=quiet_cluster, action="snapshot", status="running")
    RunbookStep.objects.create(run=run, position=1, name="snapshot a", status="succeeded")
    RunbookStep.objects.create(run=run, position=2, name="snapshot b", status="running")
    client = Client()
    client.force_login(viewer)

    html = client.get("/runbooks/clusters/quiet/runs/").content.decode()

    assert '<progress max="2" value="1"' in html
    assert "now: snapshot b" in html


def api(user) -> Client:
    _, raw = ApiToken.issue(user, "test")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_the_api_gives_a_dry_run_verdict_and_a_409_for_a_refused_run(
    quiet_cluster, operator
) -> None:
    client = api(operator)
    body = {"cluster": "quiet", "action": "snapshot", "params": {"node": "all"}}

    dry = client.post("/api/runbooks/runs", {**body, "dry_run": True}, "application/json")
    assert dry.status_code == 200
    assert dry.json()["ok"] is False and dry.json()["run"] is None

    real = client.post("/api/runbooks/runs", body, "application/json")
    assert real.status_code == 409
    assert real.json()["reasons"] == ["no node of cluster quiet answered; is it running?"]
    run_id = real.json()["run"]["id"]
    assert client.get(f"/api/runbooks/runs/{run_id}").json()["status"] == "refused"
    assert [r["id"] for r in client.get("/api/runbooks/runs?cluster=quiet").json()] == [run_id]


def test_the_api_refuses_viewers_unknown_clusters_and_actions(quiet_cluster, viewer, operator):
    body = {"cluster": "quiet", "action": "snapshot", "params": {}}
    assert api(viewer).post("/api/runbooks/runs", body, "application/json").status_code == 403
    client = api(operator)
    missing = client.post("/api/runbooks/runs", {**body, "cluster": "nope"}, "application/json")
    assert missing.status_code == 404
    bad = client.post("/api/runbooks/runs", {**body, "action": "reboot"}, "application/json")
    assert bad.status_code == 422
    assert client.get("/api/runbooks/runs/999999").status_code == 404
    assert not RunbookRun.objects.exists()


@pytest.mark.cluster
def test_the_api_queues_a_run_on_a_live_cluster(console_cluster, operator) -> None:
    body = {"cluster": "local", "action": "snapshot", "params": {"node": "unrdf-daemon-0"}}
    response = api(operator).post("/api/runbooks/runs", body, "application/json")
    assert response.status_code == 202
    run = response.json()["run"]
    assert run["status"] == "queued" and run["requested_by"] == "olivia"
    assert [s["name"] for s in run["steps"]] == ["snapshot unrdf-daemon-0"]


def test_the_cluster_page_includes_the_buttons_and_the_runs(quiet_cluster, operator) -> None:
    run = RunbookRun.objects.create(cluster=quiet_cluster, action="snapshot", status="succeeded")
    client = Client()
    client.force_login(operator)

    html = client.get("/clusters/quiet/").content.decode()

    assert 'data-testid="runbook-actions"' in html
    assert f'data-run-id="{run.id}" data-status="succeeded"' in html
