"""restart_node on a release: refused for a release nodes may not run; a release a node
cannot start on fails the run with the node's own log lines and puts it back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.conf import LazySettings
from django.test import Client

from console.clusters.models import Cluster, Release
from console.runbooks import services
from console.runbooks.models import RunbookRun
from console.runbooks.nodes import manager_for
from daemon.localcluster import releases as store
from tests import cluster_harness
from tests.console.runbooks.test_node_lifecycle import request
from tests.console.runbooks.test_worker import finished

ROOT = Path(__file__).resolve().parents[3]
CRASH = 'raise SystemExit("this release cannot start (a test build)")\n'


def make_release(name: str, status: str, max_code_version: int | None = 0) -> Release:
    return Release.objects.create(
        name=name, package_version="0", sha256="0" * 64, size_bytes=1, wheel_path="/nowhere",
        source="upload", status=status, max_code_version=max_code_version,
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "max_code", "reason"),
    [
        ("registered", 0, "not verified; verify it first"),
        ("yanked", 0, "is yanked"),
        ("retired", 0, "not verified"),
        ("verified", None, "supports state-machine code version up to None"),
    ],
)
def test_a_restart_on_a_release_nodes_may_not_run_is_refused_with_the_reason(
    fake_cluster: Cluster, operator, status: str, max_code: int | None, reason: str
) -> None:
    make_release("r-x", status, max_code)

    outcome = services.request_run(
        fake_cluster, "restart_node", {"node": "unrdf-daemon-1", "release": "r-x"}, operator
    )

    assert outcome.run is None or outcome.run.status == "refused"
    assert any(reason in r for r in outcome.reasons), outcome.reasons


@pytest.fixture(scope="module")
def crashing_wheel(tmp_path_factory: pytest.TempPathFactory) -> store.Wheel:
    """A wheel of this tree whose daemon exits at start."""
    tmp = tmp_path_factory.mktemp("crashing")
    repo = tmp / "repo"
    repo.mkdir()
    store._export_tree(ROOT, None, repo)
    main = repo / "daemon" / "__main__.py"
    text = main.read_text()
    main.write_text(
        text.replace(
            "from __future__ import annotations\n",
            "from __future__ import annotations\n" + CRASH,
            1,
        )
        if "from __future__" in text
        else CRASH + text
    )
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "crashing"], check=True)
    return store.build_wheel(repo, tmp / "wheels", release="crash-1")


@pytest.mark.django_db(transaction=True)
@pytest.mark.cluster
def test_a_node_that_cannot_start_on_a_release_is_put_back_and_the_step_shows_its_log(
    managed: Cluster,
    start_worker,
    daemon_cluster: cluster_harness.Cluster,
    settings: LazySettings,
    crashing_wheel: store.Wheel,
    operator,
) -> None:
    console_cluster = managed
    store.install(crashing_wheel, Path(settings.RELEASES_DIR) / "envs")
    # As if it had passed verification (on another machine, say) and fails only here.
    make_release("crash-1", "verified", 0)
    start_worker()
    node = next(n for n in daemon_cluster.nodes if n is not daemon_cluster.leader())

    run = request(
        console_cluster, "restart_node", {"node": node.name, "release": "crash-1"}, operator
    )

    assert finished(run, 240).status == "failed", run.error
    step = run.steps.get(position=4)
    assert step.status == "failed"
    assert "this release cannot start" in step.detail["error"], step.detail
    assert "put back on the checkout (running, still drained)" in step.detail["error"]
    state = manager_for(console_cluster).status(node.name)
    assert state.running and state.release == ""
    assert daemon_cluster.get(node, "/health/startup").status_code == 200
    manager_for(console_cluster).process(node.name).stop()


@pytest.mark.django_db
@pytest.mark.parametrize(("to", "reason"), [("2", "scale to at least 3"), ("x", "to:")])
def test_the_scale_form_posts_its_number_and_a_bad_size_is_refused_with_the_reason(
    fake_cluster: Cluster, operator, to: str, reason: str
) -> None:
    client = Client()
    client.force_login(operator)
    response = client.post(
        f"/runbooks/clusters/{fake_cluster.name}/request/",
        {"action": "scale", "to": to, "dry_run": "1"},
        headers={"X-Requested-With": "fetch"},
    )
    assert response.status_code in (200, 400, 422)
    assert reason in response.content.decode()
    assert not RunbookRun.objects.exists()
