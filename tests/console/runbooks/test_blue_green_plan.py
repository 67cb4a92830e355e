"""The blue-green action without processes: its dry-run over the API, its refusals, its
success gate's float comparison and the rollback a resumed worker can rebuild."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from console.accounts.models import ApiToken
from console.clusters.models import Cluster, Release
from console.runbooks import live, preflight, services
from console.runbooks.actions.base import StepContext
from console.runbooks.actions.blue_green import ROLLBACK_STOP, BlueGreen, BlueGreenParams
from console.runbooks.actions.blue_green_steps import success_ratio
from console.runbooks.models import RunbookRun
from tests.console.runbooks.fakes import FakeCluster
from tests.console.runbooks.kube_standin import StandInApiServer, statefulset

pytestmark = pytest.mark.django_db


def release(name: str, status: str = "verified") -> Release:
    return Release.objects.create(
        name=name, package_version="0", sha256="0" * 64, size_bytes=1, wheel_path="/nowhere",
        source="upload", status=status, max_code_version=1,
    )  # fmt: skip


def api(user: Any) -> Client:
    _, raw = ApiToken.issue(user, "test")
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_the_api_dry_run_plans_new_members_first_then_the_switch_then_the_old_members_out(
    fake_cluster: Cluster, operator
) -> None:
    release("r2")
    body = {"cluster": "fake", "action": "blue_green", "params": {"release": "r2"}}

    dry = api(operator).post("/api/runbooks/runs", {**body, "dry_run": True}, "application/json")

    assert dry.status_code == 200, dry.content
    answer = dry.json()
    assert answer["ok"] is True, answer
    steps = answer["steps"]
    order = [
        "add unrdf-daemon-3 on release r2",
        "soak unrdf-daemon-3 on release r2",
        "add unrdf-daemon-4 on release r2",
        "add unrdf-daemon-5 on release r2",
        "hand leadership to a new member",
        "success gate with a new member leading",
        "drain unrdf-daemon-0",
        "remove unrdf-daemon-0 from the membership",
        "stop unrdf-daemon-0 and keep its data",
        "stop unrdf-daemon-2 and keep its data",
        "check the new members serve on release r2",
    ]
    assert [s for s in steps if s in order] == order
    success = steps.index("success gate with a new member leading")
    assert answer["gates"][success] == [
        "the cluster has quorum and a leader, for 10 s",
        "the leader is one of the new members, for 10 s",
        "execution success ratio ≥ 0.98, for 10 s",
    ]
    assert not RunbookRun.objects.exists()


@pytest.mark.parametrize(
    ("setup", "params", "reason"),
    [
        (None, {"release": "nope"}, "unknown release 'nope'"),
        ("uploaded", {"release": "r2"}, "release r2 is uploaded, not verified; verify it first"),
        ("yanked", {"release": "r2"}, "release r2 is yanked: it must not run"),
    ],
)
def test_a_release_that_is_unknown_or_not_verified_is_refused_with_the_reason(
    fake_cluster: Cluster, operator, setup: str | None, params: dict, reason: str
) -> None:
    if setup:
        release("r2", setup)

    verdict = preflight.check(fake_cluster, "blue_green", params)

    assert not verdict.ok
    assert any(r.startswith(reason) for r in verdict.reasons), verdict.reasons


def test_a_success_ratio_given_as_a_percent_is_a_422_naming_the_field(
    fake_cluster: Cluster, operator
) -> None:
    body = {"cluster": "fake", "action": "blue_green", "params": {"release": "r2"}}
    body["params"]["successRatio"] = 98

    answer = api(operator).post("/api/runbooks/runs", body, "application/json")

    assert answer.status_code == 422
    assert "successRatio: Input should be less than or equal to 1" in str(answer.json())


def test_a_second_run_while_one_runs_is_refused_naming_it(fake_cluster: Cluster) -> None:
    release("r2")
    running = RunbookRun.objects.create(
        cluster=fake_cluster, action="upgrade", params={"release": "r2"}, status="running"
    )

    verdict = preflight.check(fake_cluster, "blue_green", {"release": "r2"})

    assert any(f"run #{running.id}" in r for r in verdict.reasons), verdict.reasons


def test_an_unreachable_node_or_a_cluster_too_big_to_double_is_refused(
    fake_cluster: Cluster, fake: FakeCluster
) -> None:
    release("r2")
    fake.nodes["unrdf-daemon-2"].answers = False

    verdict = preflight.check(fake_cluster, "blue_green", {"release": "r2"})
    assert any("unrdf-daemon-2 unreachable" in r for r in verdict.reasons), verdict.reasons

    big = FakeCluster(size=7)
    params = BlueGreenParams(release="r2")
    reasons = BlueGreen().check(big.view(), params, big)  # type: ignore[arg-type]
    assert any("7 members would become 14" in r for r in reasons), reasons


def metrics_answering(fake: FakeCluster, counts: dict[str, int]) -> None:
    """The fake's nodes answer /metrics with the lifetime counters in `counts`."""
    answer = fake._answer

    def with_metrics(method: str, node: Any, path: str, body: Any) -> Any:
        if (method, path) == ("GET", "/metrics"):
            return {"totalOperations": counts["total"], "successCount": counts["ok"]}
        return answer(method, node, path, body)

    fake._answer = with_metrics  # type: ignore[method-assign]


def test_the_success_gate_compares_the_ratio_over_its_window_as_a_float(
    fake_cluster: Cluster, fake: FakeCluster
) -> None:
    counts = {"total": 5000, "ok": 4000}  # lifetime before the window: not counted
    metrics_answering(fake, counts)
    gate = success_ratio(0.98, min_executions=20)
    ctx = StepContext(client=fake, heartbeat=lambda: None, cluster=fake_cluster)  # type: ignore[arg-type]
    assert gate.check(fake.view(), ctx).ok

    counts.update(total=5000 + 1000, ok=4000 + 985)  # 98.5 %: the runbook's -gt 98 breaks
    passed = gate.check(fake.view(), ctx)
    assert passed.ok and passed.value["ratio"] == pytest.approx(0.985)

    counts.update(total=5000 + 2000, ok=4000 + 1955)  # 97.75 % over the whole window
    failed = gate.check(fake.view(), ctx)
    assert not failed.ok
    assert failed.reason == "success ratio 0.9775 over 2000 executions < 0.98"


def test_a_handful_of_executions_is_too_few_to_fail_the_success_gate(
    fake_cluster: Cluster, fake: FakeCluster
) -> None:
    counts = {"total": 0, "ok": 0}
    metrics_answering(fake, counts)
    gate = success_ratio(0.98, min_executions=20)
    ctx = StepContext(client=fake, heartbeat=lambda: None, cluster=fake_cluster)  # type: ignore[arg-type]
    gate.check(fake.view(), ctx)

    counts.update(total=3, ok=2)
    assert gate.check(fake.view(), ctx).ok

    counts.update(total=20, ok=19)  # 0.95 over enough executions
    assert not gate.check(fake.view(), ctx).ok


def test_the_rollback_removes_new_members_newest_first_and_a_resumed_worker_rebuilds_it() -> None:
    params = BlueGreenParams(release="r2", old=["n-0", "n-1", "n-2"], new=["n-3", "n-4", "n-5"])
    action = BlueGreen()
    touched = action.touched(
        ["add n-3 on release r2", "soak n-3 on release r2", "add n-4 on release r2"]
    )
    assert touched == ["n-3", "n-4"]

    names = [s.name for s in action.rollback(params, touched)]

    assert names == [
        "rollback: put leadership back on an old member",
        "rollback: drain n-4",
        "rollback: remove n-4 from the membership",
        "rollback: stop n-4",
        "rollback: forget n-4",
        "rollback: drain n-3",
        "rollback: remove n-3 from the membership",
        "rollback: stop n-3",
        "rollback: forget n-3",
        "rollback: undrain the old members and check they serve",
    ]
    # What console.runbooks.rollback.resume does with the rows a dead worker left:
    stops = [n.removeprefix(ROLLBACK_STOP) for n in names if n.startswith(ROLLBACK_STOP)]
    assert [s.name for s in action.rollback(params, list(reversed(stops)))] == names


def test_once_an_old_member_has_left_the_rollback_hands_over_to_an_operator() -> None:
    params = BlueGreenParams(release="r2", old=["n-0", "n-1", "n-2"], new=["n-3", "n-4", "n-5"])
    action = BlueGreen()
    started = ["add n-3 on release r2", "remove n-0 from the membership"]

    steps = action.rollback(params, action.touched(started))

    assert [s.name for s in steps] == ["rollback: check whether the old members can take over"]


def test_a_kubernetes_cluster_is_refused_pointing_to_the_rolling_upgrade(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    release("r2")
    monkeypatch.setenv("DAEMON_KUBE_TOKEN_BG", "kube-sa-token")
    repo = "registry.example/unrdf-daemon"
    sts = statefulset("unrdf-daemon", f"{repo}:1.0.0")
    with StandInApiServer("unrdf", sts, "kube-sa-token") as server:
        cluster = fake.register()
        Cluster.objects.filter(id=cluster.id).update(
            node_manager="kubernetes", kube_api_url=server.url, kube_namespace="unrdf",
            kube_statefulset="unrdf-daemon", kube_image=repo, kube_token_env="DAEMON_KUBE_TOKEN_BG",
        )  # fmt: skip
        cluster.refresh_from_db()
        monkeypatch.setattr(fake, "cluster", cluster, raising=False)  # as DaemonClient has

        reasons = BlueGreen().check(fake.view(), BlueGreenParams(release="r2"), fake)  # type: ignore[arg-type]

    assert any(
        "kubernetes node manager cannot remove an old member while keeping its data" in r
        and "use the rolling upgrade" in r
        for r in reasons
    ), reasons


def test_a_resumed_run_rebuilds_the_same_plan_from_its_stored_names(fake_cluster: Cluster) -> None:
    release("r2")
    first = preflight.check(fake_cluster, "blue_green", {"release": "r2"})
    assert first.ok, first.reasons
    assert first.params["old"] == ["unrdf-daemon-0", "unrdf-daemon-1", "unrdf-daemon-2"]
    assert first.params["new"] == ["unrdf-daemon-3", "unrdf-daemon-4", "unrdf-daemon-5"]

    again = preflight.replan(
        fake_cluster, "blue_green", first.params, live.client_for(fake_cluster)
    )

    assert again.ok and again.steps == first.steps


def test_a_blue_green_run_shows_its_steps_and_success_gate_on_its_page_and_in_the_api(
    fake_cluster: Cluster, operator
) -> None:
    release("r2")
    outcome = services.request_run(fake_cluster, "blue_green", {"release": "r2"}, operator)
    assert outcome.run is not None, outcome.reasons
    step = outcome.run.steps.get(name="success gate with a new member leading")
    value = {"executions": 480, "succeeded": 475, "ratio": 475 / 480, "threshold": 0.98}
    step.gates = [{"name": "execution success ratio ≥ 0.98, for 10 s", "ok": True,
                   "value": value, "reason": "", "heldS": 4.0}]  # fmt: skip
    step.save(update_fields=["gates"])
    client = Client()
    client.force_login(operator)

    page = client.get(f"/runbooks/runs/{outcome.run.id}/")
    answer = api(operator).get(f"/api/runbooks/runs/{outcome.run.id}")

    assert page.status_code == 200
    assert "add unrdf-daemon-3 on release r2" in page.content.decode()
    assert answer.status_code == 200, answer.content
    gates = {s["name"]: s["gates"] for s in answer.json()["steps"]}
    assert gates["success gate with a new member leading"][0]["value"]["ratio"] == 475 / 480
