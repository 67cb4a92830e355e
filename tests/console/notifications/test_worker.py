"""Delivery through a real Celery worker: a receiver that fails twice gets the message on
the third attempt, the retries spaced by the back-off, every attempt journaled."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from console.events.models import Event
from console.notifications import services
from console.notifications.models import Channel, Delivery
from tests.conftest import wait_for
from tests.console.notifications.support import Webhook, webhook_receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def failing_twice(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    """Set up before `start_worker`, which copies the environment when it is set up."""
    monkeypatch.setenv("NOTIFY_RETRY_BASE_S", "0.5")
    with webhook_receiver(fail_first=2) as hook:
        monkeypatch.setenv("NOTIFY_CHAT_URL", hook.url)
        yield hook


def test_a_failing_receiver_gets_the_message_after_retries_with_back_off(
    failing_twice: Webhook, start_worker: Callable, isolated_broker, monkeypatch
) -> None:
    monkeypatch.setenv("NOTIFY_CELERY_QUEUE", isolated_broker.queue)  # where this process sends
    worker = start_worker()
    channel = Channel.objects.create(
        name="chat", kind="slack", routes=["warning"], secret_env="NOTIFY_CHAT_URL"
    )
    test = services.send_test(channel, actor="ada")  # queued on commit
    try:
        wait_for(lambda: Delivery.objects.get(pk=test.pk).status == "sent", 60, "delivery")
    except BaseException:
        print(worker.log())  # the worker's side of the story
        raise
    assert [b["text"] for b in failing_twice.bodies] == [
        "raftops test notification for channel chat"
    ]
    attempts = list(Event.objects.filter(kind="notification.attempt").order_by("id"))
    assert [(e.payload["attempt"], e.payload["ok"]) for e in attempts] == [
        (1, False),
        (2, False),
        (3, True),
    ]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    # 0.5 s, then doubled (Celery's ETA timer may fire a few milliseconds early)
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95
    assert Delivery.objects.get(pk=test.pk).attempts == 3
