"""A real browser against a real daphne: log in, land on the dashboard, CSS applied."""

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.browser.support import PASSWORD, browser_page
from tests.conftest import ConsoleServer

pytestmark = pytest.mark.browser


@pytest.mark.django_db(transaction=True)
def test_operator_logs_in_through_a_browser_and_sees_the_dashboard(
    console_server: ConsoleServer, chromium_path: Path
) -> None:
    from playwright.sync_api import expect

    # Created before Playwright starts: its event loop would make the ORM refuse to run.
    get_user_model().objects.create_user("operator", password=PASSWORD)

    with browser_page(chromium_path) as page:
        page.goto(f"{console_server.url}/")
        expect(page).to_have_url(f"{console_server.url}/accounts/login/?next=/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        # The stylesheet is served by daphne: the dark background must be applied.
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 23, 28)"

        page.get_by_label("Username").fill("operator")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        expect(page).to_have_url(f"{console_server.url}/")
        expect(page.get_by_test_id("dashboard")).to_be_visible()
        expect(page.get_by_text("operator", exact=True)).to_be_visible()
