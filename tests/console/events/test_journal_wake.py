"""The journal's wake-up is a hint: a broken or hung channel layer must not hold up,
or fail, the writer (the collector's tick, a runbook step, a request)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from django.test import override_settings

from console.events import journal
from console.events.models import Event
from tests.loopback import silent_server


@pytest.fixture(autouse=True)
def fresh_backoff() -> Iterator[None]:
    """A failed wake-up silences the next ones for a while; other tests must not inherit
    that (their Redis works)."""
    journal._quiet_until = 0.0
    yield
    journal._quiet_until = 0.0


@pytest.fixture
def hung_redis() -> Iterator[int]:
    """A loopback server that accepts connections and never answers: a hung Redis
    (a real TCP peer, not a mock of the client)."""
    with silent_server() as port:
        yield port


def redis_layer(port: int) -> dict:
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }


@pytest.mark.django_db(transaction=True)
def test_a_hung_channel_layer_does_not_hold_up_the_writer(
    hung_redis: int, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(CHANNEL_LAYERS=redis_layer(hung_redis)):
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="console.events"):
            events = [journal.append("test.hung", actor="test") for _ in range(5)]
        elapsed = time.monotonic() - started
    assert Event.objects.filter(id__in=[e.id for e in events]).count() == 5  # all written
    # The first wake-up gives up after WAKE_TIMEOUT_S and the next ones are skipped:
    # without the bound the first never returned, without the backoff each paid it.
    assert elapsed < journal.WAKE_TIMEOUT_S + 2
    warnings = [r for r in caplog.records if "wake-up failed" in r.getMessage()]
    assert len(warnings) == 1 and "timed out" in warnings[0].getMessage()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_channel_layer_costs_one_log_line_per_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.conftest import free_port

    layers = redis_layer(free_port())
    with override_settings(CHANNEL_LAYERS=layers), caplog.at_level(logging.WARNING):
        journal.append("test.down", actor="test")
    warnings = [r for r in caplog.records if "wake-up failed" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # no traceback per event
