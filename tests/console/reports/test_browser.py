"""Each report in a real browser (daphne + chromium): reached from the nav and the index,
showing the figures the test wrote, the monthly burn-rate chart drawn by uPlot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.browser.support import browser_page, log_in
from tests.conftest import ConsoleServer
from tests.console.reports.support import add_event, add_execution, make_cluster

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_viewer_opens_each_report_from_the_nav_and_sees_its_figures(
    console_server: ConsoleServer, chromium_path: Path
) -> None:
    from playwright.sync_api import expect

    from tests.browser.support import PASSWORD

    # Rows first: Playwright's event loop would make the ORM refuse to run later.
    get_user_model().objects.create_user("victor", password=PASSWORD)
    now = timezone.now()
    # Within the last 24 hours and this month, even just after midnight on the 1st.
    at = max(now - dt.timedelta(hours=1), now.replace(day=1, hour=0, minute=0, second=1))
    cluster = make_cluster(created_at=now - dt.timedelta(days=40))
    for i in range(9):
        add_execution(cluster, at, 10.0 + i)
    add_execution(cluster, at, 80.0, "failure", "handler raised")
    add_event(cluster, "leader.changed", at, **{"from": "n0", "to": "n1"})

    with browser_page(chromium_path) as page:
        log_in(page, console_server.url, "victor")
        page.get_by_role("link", name="Reports").click()
        expect(page.get_by_test_id("report-index")).to_contain_text("prod")

        page.get_by_role("link", name="last 24 hours").click()
        daily = page.get_by_test_id("report-daily")
        expect(daily).to_be_visible()
        expect(page.get_by_test_id("daily-operations")).to_have_text("10")
        expect(daily).to_contain_text("handler raised")
        expect(daily).to_contain_text("90.00 %")

        page.go_back()
        page.get_by_role("link", name="last 7 days").click()
        expect(page.get_by_test_id("weekly-operations")).to_have_text("10")
        expect(page.get_by_test_id("weekly-backups")).to_contain_text("no verified backup")

        page.go_back()
        page.get_by_role("link", name=now.strftime("%Y-%m")).click()
        expect(page.get_by_test_id("monthly-operations")).to_have_text("10")
        expect(page.get_by_test_id("monthly-success")).to_have_text("90.000 %")
        expect(page.get_by_test_id("monthly-failovers")).to_have_text("1")
        chart = page.get_by_test_id("burn-chart")
        expect(chart).to_have_attribute("data-ready", "1")
        expect(chart.locator("canvas")).to_have_count(1)
