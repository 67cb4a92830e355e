"""Fixtures for the notification tests: receivers, a cluster, and channels pointing at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.console.notifications.support import Mailbox, Webhook, smtp_server, webhook_receiver


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    with webhook_receiver() as hook:
        monkeypatch.setenv("NOTIFY_CHAT_URL", hook.url)
        yield hook


@pytest.fixture
def mailbox(settings) -> Iterator[Mailbox]:
    with smtp_server() as box:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", box.port
        yield box


# A real daemon cluster (the collector's fixture) and a real Celery worker on a queue of
# its own (the runbooks' fixtures), shared rather than copied.
from tests.console.collector.conftest import daemons  # noqa: E402, F401
from tests.console.runbooks.conftest import isolated_broker, start_worker  # noqa: E402, F401
