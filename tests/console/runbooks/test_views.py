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
        "runbook-restart_node-unrdf-daemon-0",
    ]:
        assert f'data-testid="{testid}"' in html
    assert "runbook-transfer_leader-unrdf-daemon-0" not in html  # already the leader
    # Per node also Restart, and Stop (reachable) or Start (not): two more forms each.
    # + scale, + 2 drills and 3 node pickers, + upgrade and quick rollback
    forms = 6 + 2 * quiet_cluster.nodes.count() + 1 + 5 + 2
    assert html.count('value="1" class="secondary">Check') == html.count(">Run</button>") == forms


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


def test_the_api_queues_a_run_on_a_live_cluster(fake_cluster, operator) -> None:
    body = {"cluster": "fake", "action": "snapshot", "params": {"node": "unrdf-daemon-0"}}
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


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("drain", {}, "node is required"),
        ("drain", {"node": "x", "force": True}, "unknown parameter 'force'; drain takes only 'node'"),
        ("transfer_leader", {"node": "x"}, "unknown parameter 'node'"),
        ("undrain", {"node": ["x"]}, "node: Input should be a valid string"),
    ],
)  # fmt: skip
def test_the_api_answers_bad_params_with_a_422_naming_the_field(
    quiet_cluster, operator, action, params, message
) -> None:
    body = {"cluster": "quiet", "action": action, "params": params}
    if params == {}:
        del body["params"]  # left out is the same as empty
    response = api(operator).post("/api/runbooks/runs", body, "application/json")
    assert response.status_code == 422
    assert message in str(response.json()["detail"])
    assert not RunbookRun.objects.exists() and not Event.objects.exists()


def test_the_openapi_shows_each_actions_parameter_schema(operator) -> None:
    schema = api(operator).get("/api/openapi.json").json()["components"]["schemas"]
    assert schema["NodeParams"]["required"] == ["node"]
    assert schema["TargetParams"]["properties"]["target"]["maxLength"] == 63
    assert schema["SnapshotParams"]["properties"]["node"]["default"] == "all"
    assert "gates" in schema["StepOut"]["properties"]


def test_the_api_cancels_a_queued_run_and_refuses_to_cancel_it_twice(
    fake_cluster, operator, viewer
) -> None:
    client = api(operator)
    body = {"cluster": "fake", "action": "snapshot", "params": {}}
    run_id = client.post("/api/runbooks/runs", body, "application/json").json()["run"]["id"]
    assert api(viewer).post(f"/api/runbooks/runs/{run_id}/cancel").status_code == 403

    cancelled = client.post(f"/api/runbooks/runs/{run_id}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert {s["status"] for s in cancelled.json()["steps"]} == {"skipped"}
    again = client.post(f"/api/runbooks/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"run #{run_id} is cancelled; only a queued or running run (or a paused one) can be cancelled"
    )
    assert client.post("/api/runbooks/runs/999999/cancel").status_code == 404


def test_the_api_resumes_a_stale_run_and_shows_gate_values(quiet_cluster, operator) -> None:
    run = RunbookRun.objects.create(cluster=quiet_cluster, action="drain", status="stale")
    gate = {"name": "a majority stays serving", "ok": True, "value": {"serving": 2}, "reason": ""}
    RunbookStep.objects.create(
        run=run, position=1, name="ask", status="succeeded", gates=[gate], attempts=1
    )
    RunbookStep.objects.create(run=run, position=2, name="wait", status="failed", attempts=1)
    client = api(operator)

    resumed = client.post(f"/api/runbooks/runs/{run.id}/resume")

    assert resumed.status_code == 200
    body = resumed.json()
    assert (body["status"], body["resumed_count"]) == ("queued", 1)
    assert [(s["status"], s["attempts"]) for s in body["steps"]] == [
        ("succeeded", 1),
        ("pending", 1),
    ]
    assert body["steps"][0]["gates"] == [gate]
    assert client.post(f"/api/runbooks/runs/{run.id}/resume").status_code == 409


def test_the_run_page_offers_cancel_or_resume_to_operators_only(
    quiet_cluster, operator, viewer
) -> None:
    run = RunbookRun.objects.create(cluster=quiet_cluster, action="snapshot", status="running")
    RunbookStep.objects.create(
        run=run, position=1, name="snapshot a", status="failed",
        gates=[{"name": "caught up", "ok": False, "value": {"lagMs": 250}, "reason": "lags"}],
    )  # fmt: skip
    client = Client()
    client.force_login(operator)
    html = client.get(f"/runbooks/runs/{run.id}/").content.decode()
    assert 'data-testid="run-cancel"' in html and 'data-testid="run-resume"' not in html
    assert 'data-gate-ok="false"' in html and "lagMs=250" in html

    response = client.post(f"/runbooks/runs/{run.id}/cancel/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelling"
    html = client.get(f"/runbooks/runs/{run.id}/").content.decode()
    assert 'data-active="true"' in html  # still polled until the worker stops
    assert 'data-testid="run-cancel"' not in html

    RunbookRun.objects.filter(id=run.id).update(status="stale")
    assert 'data-testid="run-resume"' in client.get(f"/runbooks/runs/{run.id}/").content.decode()
    viewer_client = Client()
    viewer_client.force_login(viewer)
    assert (
        'data-testid="run-resume"'
        not in viewer_client.get(f"/runbooks/runs/{run.id}/").content.decode()
    )
    assert viewer_client.post(f"/runbooks/runs/{run.id}/resume/").status_code == 403


def test_resuming_a_finished_run_from_the_page_says_why_not(quiet_cluster, operator) -> None:
    run = RunbookRun.objects.create(cluster=quiet_cluster, action="snapshot", status="succeeded")
    client = Client()
    client.force_login(operator)
    response = client.post(f"/runbooks/runs/{run.id}/resume/", follow=True)
    assert f"run #{run.id} is succeeded; only a stale or failed run can be resumed" in (
        response.content.decode()
    )


def test_reading_runs_does_not_reap_them(quiet_cluster, viewer) -> None:
    from datetime import timedelta

    from django.utils import timezone

    long_ago = timezone.now() - timedelta(hours=1)
    run = RunbookRun.objects.create(
        cluster=quiet_cluster, action="snapshot", status="running", started_at=long_ago,
        heartbeat_at=long_ago,
    )  # fmt: skip
    client = Client()
    client.force_login(viewer)
    client.get(f"/runbooks/runs/{run.id}/")
    client.get(f"/runbooks/runs/{run.id}/steps/")
    client.get("/runbooks/clusters/quiet/runs/")
    api(viewer).get(f"/api/runbooks/runs/{run.id}")
    api(viewer).get("/api/runbooks/runs")
    run.refresh_from_db()
    assert run.status == "running"  # the collector's reaper decides, not a page view


def test_the_dry_run_lists_the_gates_each_step_checks_first(fake_cluster, operator) -> None:
    body = {"cluster": "fake", "action": "transfer_leader", "params": {"target": "unrdf-daemon-1"}}
    dry = api(operator).post("/api/runbooks/runs", {**body, "dry_run": True}, "application/json")
    assert dry.json()["gates"] == [
        ["the cluster has quorum and a leader", "unrdf-daemon-1 has caught up with the leader"],
        [],
    ]

    client = Client()
    client.force_login(operator)
    html = client.post(
        "/runbooks/clusters/fake/request/",
        {"action": "drain", "node": "unrdf-daemon-1", "dry_run": "1"},
        headers={"X-Requested-With": "fetch"},
    ).content.decode()
    assert "ask unrdf-daemon-1 to drain <span" in html
    assert "(checked first: a majority stays serving without unrdf-daemon-1)" in html
