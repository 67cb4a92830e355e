"""The runbook buttons in a real browser (daphne + chromium): "Check" shows the verdict
inline without a reload; "Run" of a refused action shows the refusal and the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.clusters.models import Cluster
from console.runbooks.models import RunbookRun
from tests.browser.support import browser_page, log_in
from tests.conftest import ConsoleServer, free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_check_and_run_show_their_verdicts_inline(
    console_server: ConsoleServer,
    chromium_path: Path,
    operator,
) -> None:
    from playwright.sync_api import expect

    # A cluster whose nodes do not answer: preflight must refuse, and say why.
    port = free_port()
    cluster = Cluster.objects.create(name="quiet", seed_urls=[f"http://127.0.0.1:{port}"])
    cluster.nodes.create(name="unrdf-daemon-0", http_url=f"http://127.0.0.1:{port}")

    with browser_page(chromium_path) as page:
        log_in(page, console_server.url, "olivia", next_path="/clusters/quiet/")
        expect(page.get_by_test_id("runbook-actions")).to_be_visible()
        page.evaluate("window.loadedOnce = true")  # gone if the page reloads

        snapshot_all = page.get_by_test_id("runbook-snapshot-all")
        snapshot_all.get_by_role("button", name="Check").click()
        verdict = page.get_by_test_id("verdict")
        expect(verdict).to_contain_text("no node of cluster quiet answered")
        expect(verdict).to_have_attribute("data-ok", "false")

        snapshot_all.get_by_role("button", name="Run").click()
        expect(verdict).to_contain_text("refused (run #")
        expect(page.get_by_test_id("runbook-runs")).to_contain_text("refused")
        assert page.evaluate("window.loadedOnce") is True
    assert RunbookRun.objects.get().status == "refused"


def test_the_run_page_cancels_a_queued_run_after_asking(
    console_server: ConsoleServer,
    chromium_path: Path,
    operator,
) -> None:
    from playwright.sync_api import expect

    cluster = Cluster.objects.create(name="quiet", seed_urls=[f"http://127.0.0.1:{free_port()}"])
    run = RunbookRun.objects.create(cluster=cluster, action="snapshot", status="queued")
    run.steps.create(position=1, name="snapshot unrdf-daemon-0")

    with browser_page(chromium_path) as page:
        log_in(page, console_server.url, "olivia", next_path=f"/runbooks/runs/{run.id}/")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_test_id("run-cancel").click()
        expect(page.get_by_test_id("run-status")).to_have_text("cancelled")
        expect(page.get_by_test_id("run-cancel")).to_have_count(0)
    run.refresh_from_db()
    assert run.status == "cancelled"
