"""The drill history page reads expectation, measurement and verdict from the run's steps."""

from __future__ import annotations

import pytest
from django.test import Client

from console.clusters.models import Cluster
from console.runbooks.models import RunbookRun, RunbookStep

pytestmark = pytest.mark.django_db


def drill_run(cluster: Cluster, verdict: str, recovery: float) -> RunbookRun:
    run = RunbookRun.objects.create(cluster=cluster, action="drill_kill_leader", status="succeeded")
    expectation = {
        "fault": "SIGKILL the leader process",
        "events": ["leader.changed"],
        "recovery_s": 10.0,
    }
    details = [
        {"expectation": expectation},
        {
            "killed": "n1",
            "newLeader": "n2",
            "recoveryS": recovery,
            "writer": {"acknowledged": 40, "lost": 0},
        },
        {
            "verdict": verdict,
            "why": f"recovered in {recovery}s",
            "expectation": expectation,
            "checks": [
                {"name": "every acknowledged execution on every node", "ok": True, "detail": ""},
                {"name": "event leader.changed", "ok": verdict == "pass", "detail": ""},
            ],
        },
    ]
    for position, detail in enumerate(details, 1):
        RunbookStep.objects.create(
            run=run, position=position, name=f"s{position}", status="succeeded", detail=detail
        )
    return run


def test_the_drill_page_lists_each_drill_with_its_expectation_measurement_and_verdict(
    client: Client, operator: object
) -> None:
    cluster = Cluster.objects.create(name="drilled", seed_urls=["http://127.0.0.1:9"])
    drill_run(cluster, "pass", 2.5)
    drill_run(cluster, "fail", 14.0)
    RunbookRun.objects.create(cluster=cluster, action="snapshot", status="succeeded")
    client.force_login(operator)

    page = client.get(f"/runbooks/clusters/{cluster.name}/drills/")

    assert page.status_code == 200
    text = page.content.decode()
    assert text.count('data-testid="drill-row"') == 2  # the snapshot is not a drill
    assert "SIGKILL the leader process" in text and "within 10.0s" in text
    assert (
        "recovery 2.5s" in text
        and "recovery 14.0s" in text
        and "40 writes acknowledged, 0 lost" in text
    )
    assert "<strong>pass</strong>" in text and "<strong>fail</strong>" in text
    # Each check of each verdict, passed or not.
    assert text.count('data-testid="drill-checks"') == 2
    assert text.count("✓ every acknowledged execution on every node") == 2
    assert "✓ event leader.changed" in text and "✗ event leader.changed" in text


def test_the_drill_page_of_an_unknown_cluster_is_a_404(client: Client, operator: object) -> None:
    client.force_login(operator)
    assert client.get("/runbooks/clusters/nope/drills/").status_code == 404
