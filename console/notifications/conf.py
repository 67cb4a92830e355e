"""Notification settings, read at call time from Django settings (see console/settings.py)."""

from __future__ import annotations

from django.conf import settings

from console.env import env_str


def max_attempts() -> int:
    return max(1, int(getattr(settings, "NOTIFY_MAX_ATTEMPTS", 5)))


def retry_delay_s(attempt: int) -> float:
    """Exponential back-off: base, 2x base, 4x base ... capped."""
    base = float(getattr(settings, "NOTIFY_RETRY_BASE_S", 10.0))
    cap = float(getattr(settings, "NOTIFY_RETRY_MAX_S", 600.0))
    return min(cap, base * 2 ** max(0, attempt - 1))


def repeat_s() -> int:
    return int(getattr(settings, "NOTIFY_REPEAT_S", 3600))


def failing_after() -> int:
    return max(1, int(getattr(settings, "NOTIFY_FAILING_AFTER", 3)))


def keep_days() -> int:
    """How long sent and failed deliveries are kept (NOTIFY_KEEP_DAYS, default 30)."""
    return max(1, int(getattr(settings, "NOTIFY_KEEP_DAYS", 30)))


def reports_hour() -> int:
    return int(getattr(settings, "NOTIFY_REPORTS_HOUR", 7))


def timeout_s() -> float:
    return float(getattr(settings, "NOTIFY_TIMEOUT_S", 5.0))


def celery_queue() -> str:
    """NOTIFY_CELERY_QUEUE, read at call time: the queue deliveries go to (empty: Celery's
    default queue, which `make run`'s worker reads)."""
    return env_str("NOTIFY_CELERY_QUEUE")
