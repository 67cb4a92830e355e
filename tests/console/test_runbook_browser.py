"""The runbook buttons in a real browser (daphne + chromium): "Check" shows the verdict
inline without a reload; "Run" of a refused action shows the refusal and the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.clusters.models import Cluster
from console.runbooks.models import RunbookRun
from tests.browser.test_login_browser import CHROMIUM_ARGS, chromium_path  # noqa: F401
from tests.conftest import ConsoleServer, free_port

pytest_plugins = ["tests.console.runbook_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_check_and_run_show_their_verdicts_inline(
    console_server: ConsoleServer,
    chromium_path: Path,  # noqa: F811 - the fixture imported above
    operator,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    # A cluster whose nodes do not answer: preflight must refuse, and say why.
    port = free_port()
    cluster = Cluster.objects.create(name="quiet", seed_urls=[f"http://127.0.0.1:{port}"])
    cluster.nodes.create(name="unrdf-daemon-0", http_url=f"http://127.0.0.1:{port}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{console_server.url}/accounts/login/?next=/clusters/quiet/")
            page.get_by_label("Username").fill("olivia")
            page.get_by_label("Password").fill("correct horse battery")
            page.get_by_role("button", name="Sign in").click()
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
        finally:
            browser.close()
    assert RunbookRun.objects.get().status == "refused"
