"""The dashboard in a real browser against a real daphne: it updates without a reload.

daphne runs in its own process with the in-memory channel layer, so the events this
test appends reach the page only through the consumer's poll of the journal: the
embedded set-up the issue asks to work live.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster, Node, Sample
from console.events import journal
from tests.browser.support import PASSWORD, browser_page, log_in
from tests.conftest import ConsoleServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def off_the_loop(fn: Any) -> Any:
    # Playwright's sync API runs an event loop on this thread; the ORM refuses to run
    # there, so database writes happen on a plain thread.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def make_cluster() -> None:
    user = get_user_model().objects.create_user("viewer", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    now = timezone.now()
    cluster = Cluster.objects.create(
        name="prod", leader_name="unrdf-daemon-0", term=2, has_quorum=True, cluster_size=3,
        last_polled_at=now,
    )  # fmt: skip
    for i in range(3):
        Node.objects.create(
            cluster=cluster, name=f"unrdf-daemon-{i}", http_url=f"http://127.0.0.1:{9100 + i}",
            role="leader" if i == 0 else "follower", reachable=True, last_seen_at=now,
        )  # fmt: skip
    for seconds in range(30, 0, -5):
        Sample.objects.create(
            cluster=cluster, at=now - timedelta(seconds=seconds), replication_lag_ms=1.0,
            executions_per_s=2.0, p95_ms=5.0,
        )  # fmt: skip


def leader_moves_and_an_alert_fires() -> None:
    cluster = Cluster.objects.get(name="prod")
    Node.objects.filter(cluster=cluster, name="unrdf-daemon-0").update(
        reachable=False, role="unknown"
    )
    Node.objects.filter(cluster=cluster, name="unrdf-daemon-1").update(role="leader")
    Cluster.objects.filter(pk=cluster.pk).update(leader_name="unrdf-daemon-1", term=3)
    journal.append(
        "leader.changed", actor="collector", cluster=cluster,
        **{"from": "unrdf-daemon-0", "to": "unrdf-daemon-1", "term": 3},
    )  # fmt: skip
    alert = Alert.objects.create(
        cluster=cluster, rule="cluster_size", severity="critical", state="firing",
        summary="2 of 3 nodes reachable", pending_since=timezone.now(), fired_at=timezone.now(),
    )  # fmt: skip
    journal.append("alert.firing", actor="collector", cluster=cluster, alert_id=alert.id)


def test_the_dashboard_shows_a_new_leader_and_alert_without_a_reload(
    console_server: ConsoleServer, chromium_path: Path
) -> None:
    from playwright.sync_api import expect

    make_cluster()
    with browser_page(chromium_path) as page:
        log_in(page, console_server.url, "viewer")

        expect(page.get_by_test_id("leader-name")).to_contain_text("unrdf-daemon-0")
        expect(page.locator('[data-testid^="node-row-"]')).to_have_count(3)
        expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
        expect(page.locator(".chart .uplot")).to_have_count(3)  # vendored uPlot drew
        page.evaluate("window.__sameDocument = true")

        off_the_loop(leader_moves_and_an_alert_fires)

        expect(page.get_by_test_id("leader-name")).to_contain_text("unrdf-daemon-1")
        new_leader = page.get_by_test_id("node-row-unrdf-daemon-1")
        expect(new_leader).to_have_attribute("data-leader", "true")
        expect(page.get_by_test_id("node-row-unrdf-daemon-0")).to_have_attribute(
            "data-reachable", "false"
        )
        expect(page.get_by_test_id("alerts-firing")).to_have_attribute("data-count", "1")
        expect(page.get_by_test_id("alerts-firing")).to_contain_text("2 of 3 nodes")
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
