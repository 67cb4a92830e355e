"""In a real browser: an operator runs the "kill the leader" drill from the dashboard and
watches its expectation, measurement and verdict appear on the run's page without a
reload (a real worker, a real cluster), then finds it in the drill history."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.clusters.models import Cluster
from console.runbooks.models import RunbookRun
from tests import cluster_harness
from tests.browser.support import browser_page, log_in
from tests.conftest import ConsoleServer
from tests.console.runbooks.drill_collector import collector  # noqa: F401 (fixture)
from tests.console.runbooks.test_browser_restart import managing_console  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


# The collector journals the events the drill checks for and mirrors the feed it compares.
@pytest.mark.usefixtures("collector")
def test_an_operator_runs_the_kill_the_leader_drill_and_sees_expectation_measurement_and_verdict(
    managed: Cluster,
    managing_console: ConsoleServer,  # noqa: F811
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    chromium_path: Path,
    operator,
) -> None:
    from playwright.sync_api import expect

    leader = daemon_cluster.leader().name
    with browser_page(chromium_path) as page:
        log_in(page, managing_console.url, "olivia", next_path=f"/clusters/{managed.name}/")
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_test_id("runbook-drill_kill_leader").get_by_role("button", name="Run").click()

        runs = page.get_by_test_id("runbook-runs")
        expect(runs.locator("li.run").first).to_be_visible(timeout=30_000)
        runs.locator("li.run a").first.click()
        page.evaluate("window.loadedOnce = true")  # gone if the page reloads
        steps = page.get_by_test_id("run-steps")
        expect(steps).to_contain_text("'recovery_s': 10.0", timeout=30_000)  # the expectation
        expect(steps).to_have_attribute("data-status", "succeeded", timeout=180_000)
        expect(steps).to_contain_text(f"killed={leader}")  # the measurement
        expect(steps).to_contain_text("recoveryS=")
        expect(steps).to_contain_text("verdict=pass")
        assert page.evaluate("window.loadedOnce") is True

        page.goto(f"{managing_console.url}/runbooks/clusters/{managed.name}/drills/")
        row = page.get_by_test_id("drill-row").first
        expect(row.get_by_test_id("drill-verdict")).to_contain_text("pass")
        expect(row.get_by_test_id("drill-measured")).to_contain_text("0 lost")
    run = RunbookRun.objects.get()
    assert (run.action, run.status) == ("drill_kill_leader", "succeeded")
