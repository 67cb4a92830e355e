"""In a real browser (daphne + chromium, a real worker, a real 3-node cluster, a real
release built from this tree): an operator picks a release, checks the plan, starts the
upgrade and watches every node advance on the run's page without a reload until it
succeeds; another upgrade is aborted from the page mid-way and rolls back; a third is
paused from the page and resumed to the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import LazySettings

from console.clusters.models import Cluster
from console.runbooks.models import RunbookRun
from console.runbooks.nodes import manager_for
from daemon.localcluster import releases as store
from tests import cluster_harness
from tests.browser.support import browser_page, log_in
from tests.conftest import ConsoleServer
from tests.console.runbooks.test_browser_restart import managing_console  # noqa: F401 (fixture)
from tests.console.runbooks.test_upgrade_live import ROOT, max_code, registered

pytestmark = [pytest.mark.browser, pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
RELEASE = "up-2"
RUN_TIMEOUT_MS = 300_000

# Installed in the run's page: records every phase and state each node's row shows, at
# every swap of the polled fragment (a MutationObserver sees each one), into
# window.seen (and whether a soak's gates were shown while held), which a reload loses.
RECORD_PROGRESS = """() => {
  window.seen = {};
  const section = document.querySelector('[data-testid="run-detail"]');
  const record = () => {
    section.querySelectorAll('[data-testid="node-progress"] tr[data-node]').forEach((row) => {
      const node = (window.seen[row.dataset.node] ||= { phases: [], states: [] });
      if (row.dataset.phase && !node.phases.includes(row.dataset.phase))
        node.phases.push(row.dataset.phase);
      if (!node.states.includes(row.dataset.state)) node.states.push(row.dataset.state);
    });
    section.querySelectorAll('[data-testid="gate-progress"][data-current="true"]').forEach((t) => {
      if (t.querySelector("caption").textContent.includes("soak")) window.seenSoakGates = true;
    });
  };
  record();
  new MutationObserver(record).observe(section, { childList: true, subtree: true });
}"""


@pytest.fixture(scope="module")
def release_wheel(tmp_path_factory: pytest.TempPathFactory) -> store.Wheel:
    """A release of this tree, built once for both tests (as test_upgrade_live builds it)."""
    return store.build_wheel(ROOT, tmp_path_factory.mktemp("wheel"), release=RELEASE)


def expected_order(daemon_cluster: cluster_harness.Cluster) -> list[str]:
    leader = daemon_cluster.leader().name
    return [*sorted(n.name for n in daemon_cluster.nodes if n.name != leader), leader]


def start_upgrade(page: Any, console: ConsoleServer, cluster: Cluster, soak_s: float) -> None:
    """From the dashboard: pick the release, Run, confirm, open the run's page."""
    from playwright.sync_api import expect

    form = page.get_by_test_id("runbook-upgrade")
    form.get_by_test_id("upgrade-release").select_option(RELEASE)
    form.get_by_test_id("upgrade-soak").fill(str(soak_s))
    form.get_by_role("button", name="Run").click()
    verdict = page.get_by_test_id("verdict")
    expect(verdict).to_contain_text("queued")
    verdict.get_by_role("link").click()
    expect(page.get_by_test_id("run-detail")).to_be_visible()
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads
    page.evaluate(RECORD_PROGRESS)


def test_an_operator_checks_the_plan_starts_an_upgrade_and_watches_every_node_advance_live(
    managed: Cluster,
    managing_console: ConsoleServer,  # noqa: F811
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    chromium_path: Path,
    settings: LazySettings,
    release_wheel: store.Wheel,
    operator,
) -> None:
    from playwright.sync_api import expect

    registered(release_wheel, settings, max_code(daemon_cluster))
    order = expected_order(daemon_cluster)

    with browser_page(chromium_path) as page:
        log_in(page, managing_console.url, "olivia", next_path=f"/clusters/{managed.name}/")
        page.on("dialog", lambda dialog: dialog.accept())

        # The dry-run: the plan (order, gates, deadlines), nothing changed.
        form = page.get_by_test_id("runbook-upgrade")
        form.get_by_test_id("upgrade-release").select_option(RELEASE)
        form.get_by_test_id("upgrade-soak").fill("2")
        form.get_by_role("button", name="Check").click()
        verdict = page.get_by_test_id("verdict")
        expect(verdict).to_have_attribute("data-ok", "true")
        expect(verdict.get_by_test_id("plan-order")).to_have_text(", ".join(order))
        expect(verdict.get_by_test_id("plan-soak")).to_have_text("2 s")
        expect(verdict.get_by_test_id("plan-deadline")).to_have_text("120 s")
        expect(verdict).to_contain_text(f"{order[0]} reports release {RELEASE}, for 2 s")
        expect(verdict).to_contain_text(f"a majority stays reachable without {order[0]}")

        start_upgrade(page, managing_console, managed, soak_s=2)
        steps = page.get_by_test_id("run-steps")
        expect(steps).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)

        seen = page.evaluate("window.seen")
        soak_gates_seen = page.evaluate("window.seenSoakGates === true")
        states = {
            row.get_attribute("data-node"): row.get_attribute("data-state")
            for row in page.get_by_test_id("node-progress").locator("tr[data-node]").all()
        }
        expect(page.get_by_test_id("run-nodes-done")).to_have_text("3 of 3 nodes done")
        assert page.evaluate("window.loadedOnce") is True
    print(f"UPGRADE PAGE saw, per node: {seen}")
    for node in order:
        assert len(seen[node]["phases"]) >= 2, (node, seen)
        assert "in progress" in seen[node]["states"] or "soaking" in seen[node]["states"], seen
    assert any("soaking" in seen[node]["states"] for node in order), seen
    assert soak_gates_seen  # a soak's gates shown while they were being held
    assert states == dict.fromkeys(order, "done")
    run = RunbookRun.objects.get()
    assert (run.action, run.status, run.params["order"]) == ("upgrade", "succeeded", order)
    nodes = manager_for(managed)
    assert all(nodes.status(n).release == RELEASE for n in order)


def test_an_operator_aborts_an_upgrade_mid_way_and_watches_it_roll_back(
    managed: Cluster,
    managing_console: ConsoleServer,  # noqa: F811
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    chromium_path: Path,
    settings: LazySettings,
    release_wheel: store.Wheel,
    operator,
) -> None:
    from playwright.sync_api import expect

    registered(release_wheel, settings, max_code(daemon_cluster))
    order = expected_order(daemon_cluster)
    first = order[0]

    with browser_page(chromium_path) as page:
        log_in(page, managing_console.url, "olivia", next_path=f"/clusters/{managed.name}/")
        page.on("dialog", lambda dialog: dialog.accept())
        start_upgrade(page, managing_console, managed, soak_s=2)

        # Mid-way: the first node has been stopped and is coming back on the new release.
        first_row = page.get_by_test_id(f"node-progress-{first}")
        expect(first_row).to_have_attribute(
            "data-phase", _one_of("start", "catch up", "soak"), timeout=RUN_TIMEOUT_MS
        )
        page.get_by_test_id("run-cancel").click()

        steps = page.get_by_test_id("run-steps")
        expect(steps.locator("table.steps")).to_contain_text(
            f"rollback: start {first} on the checkout", timeout=RUN_TIMEOUT_MS
        )
        expect(steps).to_have_attribute("data-status", "rolled_back", timeout=RUN_TIMEOUT_MS)
        expect(first_row).to_have_attribute("data-state", "rolled back")
        expect(page.get_by_test_id("run-error")).to_contain_text("rolled back after")
        for node in order[1:]:
            expect(page.get_by_test_id(f"node-progress-{node}")).to_have_attribute(
                "data-state", _one_of("skipped", "rolled back")
            )
        seen = page.evaluate("window.seen")
        assert page.evaluate("window.loadedOnce") is True
    print(f"ABORTED UPGRADE PAGE saw, per node: {seen}")
    assert any(state in seen[first]["states"] for state in ("rolling back", "rolled back")), seen
    run = RunbookRun.objects.get()
    assert run.status == "rolled_back", run.error
    assert run.cancel_requested_by_id == operator.id
    nodes = manager_for(managed)
    for node in daemon_cluster.nodes:  # every node back on its previous release (the checkout)
        state = nodes.status(node.name)
        assert state.running and state.release == "", (node.name, state)
        assert daemon_cluster.get(node, "/health/ready").status_code == 200


def _one_of(*values: str) -> Any:
    import re

    return re.compile("^(" + "|".join(re.escape(v) for v in values) + ")$")


def test_an_operator_pauses_an_upgrade_from_the_page_and_resumes_it_to_the_end(
    managed: Cluster,
    managing_console: ConsoleServer,  # noqa: F811
    celery_worker,
    daemon_cluster: cluster_harness.Cluster,
    chromium_path: Path,
    settings: LazySettings,
    release_wheel: store.Wheel,
    operator,
) -> None:
    from playwright.sync_api import expect

    registered(release_wheel, settings, max_code(daemon_cluster))
    order = expected_order(daemon_cluster)

    with browser_page(chromium_path) as page:
        log_in(page, managing_console.url, "olivia", next_path=f"/clusters/{managed.name}/")
        page.on("dialog", lambda dialog: dialog.accept())
        start_upgrade(page, managing_console, managed, soak_s=1)

        first_row = page.get_by_test_id(f"node-progress-{order[0]}")
        expect(first_row).not_to_have_attribute("data-state", "pending", timeout=RUN_TIMEOUT_MS)
        page.get_by_test_id("run-pause").click()
        steps = page.get_by_test_id("run-steps")
        expect(steps).to_have_attribute("data-status", "paused", timeout=RUN_TIMEOUT_MS)
        expect(page.get_by_test_id("run-hold")).to_contain_text("paused by olivia")
        expect(page.get_by_test_id("run-abort")).to_be_visible()

        page.get_by_test_id("run-resume").click()
        expect(steps).to_have_attribute("data-status", "succeeded", timeout=RUN_TIMEOUT_MS)
        expect(page.get_by_test_id("run-nodes-done")).to_have_text("3 of 3 nodes done")
        assert page.evaluate("window.loadedOnce") is True
    run = RunbookRun.objects.get()
    assert (run.status, run.resumed_count) == ("succeeded", 1)
    nodes = manager_for(managed)
    assert all(nodes.status(n).release == RELEASE for n in order)
