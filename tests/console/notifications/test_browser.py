"""The notifications page in a real browser (daphne + chromium): an admin adds a webhook
channel, sends a test message, and sees it delivered to a real receiver."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from console.notifications import delivery
from console.notifications.models import Delivery
from tests.browser.support import PASSWORD, browser_page, log_in
from tests.conftest import ConsoleServer
from tests.console.notifications.support import Webhook

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def off_the_loop(work: Callable[[], object]) -> object:
    """Run ORM work on another thread: Playwright's event loop runs on this one, and
    Django refuses synchronous database calls from a thread with a running loop."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join(30)
    return result[0]


def deliver_pending() -> list[str]:
    """The worker's part (the test's own process holds the webhook's environment)."""
    return [delivery.attempt(d.pk).status for d in Delivery.objects.filter(status="pending")]


def test_an_admin_adds_a_webhook_channel_and_its_test_message_arrives(
    console_server: ConsoleServer, chromium_path: Path, webhook: Webhook
) -> None:
    from playwright.sync_api import expect

    admin = User.objects.create_user("ada", password=PASSWORD)
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])

    with browser_page(chromium_path) as page:
        log_in(page, console_server.url, "ada")
        page.get_by_role("link", name="Notifications").click()
        form = page.get_by_test_id("channel-form")
        form.get_by_label("name").fill("team-chat")
        form.get_by_label("kind").select_option("slack")
        form.get_by_label("secret env var").fill("NOTIFY_CHAT_URL")
        form.get_by_role("button", name="Add channel").click()
        expect(page.get_by_role("status")).to_contain_text("channel team-chat added")
        row = page.get_by_test_id("channel-team-chat")
        expect(row).to_contain_text("warning")  # the escalation table's line for chat

        page.get_by_test_id("test-team-chat").click()
        expect(page.get_by_role("status")).to_contain_text("test message queued for team-chat")
        assert off_the_loop(deliver_pending) == ["sent"]
        page.reload()
        expect(page.get_by_test_id("deliveries").get_by_test_id("delivery-status")).to_have_text(
            "sent"
        )
    assert webhook.bodies[0]["text"] == "raftops test notification for channel team-chat"
