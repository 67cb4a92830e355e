"""A real browser against a real daphne: log in, land on the dashboard, CSS applied."""

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import ConsoleServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium_path() -> Path:
    if CHROMIUM.exists() or shutil.which("chromium"):
        return CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium") or "")
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {message}")
    pytest.skip(message)


@pytest.mark.django_db(transaction=True)
def test_operator_logs_in_through_a_browser_and_sees_the_dashboard(
    console_server: ConsoleServer, chromium_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    # Created before Playwright starts: its event loop would make the ORM refuse to run.
    get_user_model().objects.create_user("operator", password="correct horse battery")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{console_server.url}/")
            expect(page).to_have_url(f"{console_server.url}/accounts/login/?next=/")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            # The stylesheet is served by daphne: the dark background must be applied.
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(20, 23, 28)"

            page.get_by_label("Username").fill("operator")
            page.get_by_label("Password").fill("correct horse battery")
            page.get_by_role("button", name="Sign in").click()

            expect(page).to_have_url(f"{console_server.url}/")
            expect(page.get_by_test_id("dashboard")).to_be_visible()
            expect(page.get_by_text("operator", exact=True)).to_be_visible()
        finally:
            browser.close()
