"""What the upgrade and the quick rollback refuse, and why: a second run while one runs
(naming it), a rollback with no upgrade to undo, a rollback after the code-version
switch (pointing to a restore from backup)."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import Client

from console.clusters.models import Cluster, Release
from console.runbooks import services
from console.runbooks.models import RunbookRun
from tests.console.runbooks.fakes import FakeCluster

pytestmark = pytest.mark.django_db


def test_a_second_upgrade_while_one_runs_is_refused_with_the_running_runs_id(
    fake_cluster: Cluster, operator
) -> None:
    running = RunbookRun.objects.create(
        cluster=fake_cluster, action="upgrade", params={"release": "r2"}, status="running"
    )

    outcome = services.request_run(fake_cluster, "upgrade", {"release": "r3"}, operator)

    assert outcome.run is None or outcome.run.status == "refused"
    assert any(f"run #{running.id}" in r for r in outcome.reasons), outcome.reasons


def test_a_quick_rollback_without_a_finished_upgrade_is_refused(
    fake_cluster: Cluster, fake: FakeCluster, operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake, "cluster", fake_cluster, raising=False)
    outcome = services.request_run(fake_cluster, "rollback", {}, operator)

    assert any("no finished upgrade to roll back" in r for r in outcome.reasons)


def test_a_quick_rollback_after_the_code_version_switch_is_refused_pointing_to_a_restore(
    fake_cluster: Cluster, fake: FakeCluster, operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    Release.objects.create(
        name="r1", package_version="0", sha256="0" * 64, size_bytes=1, wheel_path="/nowhere",
        source="upload", status="verified", max_code_version=1,
    )  # fmt: skip
    RunbookRun.objects.create(
        cluster=fake_cluster, action="upgrade", status="succeeded",
        params={"release": "r2", "previous": {n: "r1" for n in fake.nodes}},
    )  # fmt: skip
    monkeypatch.setattr(fake, "cluster", fake_cluster, raising=False)  # as DaemonClient has
    original = fake._node_body
    monkeypatch.setattr(fake, "_node_body", lambda node: {**original(node), "codeVersion": 2})

    outcome = services.request_run(fake_cluster, "rollback", {}, operator)

    reasons = " ".join(outcome.reasons)
    assert "switched to state-machine code version 2" in reasons, outcome.reasons
    assert "release r1 supports up to 1" in reasons
    assert "restore from a backup" in reasons


def test_the_release_picker_offers_verified_releases_and_its_check_shows_the_order(
    fake_cluster: Cluster, operator
) -> None:
    for name, status in [("r2", "verified"), ("r-bad", "yanked")]:
        Release.objects.create(
            name=name, package_version="0", sha256="0" * 64, size_bytes=1,
            wheel_path="/nowhere", source="upload", status=status, max_code_version=1,
        )  # fmt: skip
    client = Client()
    client.force_login(operator)
    page = render_to_string(
        "runbooks/_actions.html",
        {"cluster": fake_cluster, "nodes": fake_cluster.nodes.all(), "user": operator},
    )
    assert '<option value="r2">' in page and "r-bad" not in page

    answer = client.post(
        f"/runbooks/clusters/{fake_cluster.name}/request/",
        {"action": "upgrade", "release": "r2", "dry_run": "1"},
        headers={"X-Requested-With": "fetch"},
    )

    html = answer.content.decode()
    assert 'data-ok="true"' in html, html
    followers_first = [
        html.index("start unrdf-daemon-1 on release r2"),
        html.index("start unrdf-daemon-2 on release r2"),
        html.index("start unrdf-daemon-0 on release r2"),
    ]
    assert followers_first == sorted(followers_first)
    assert "unrdf-daemon-1 reports release r2, for 10 s" in html
    assert not RunbookRun.objects.exists()
