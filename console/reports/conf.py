"""The SLO targets the reports judge against, from Django settings (console/settings.py
reads them from the environment): read at call time, so tests can override them."""

from __future__ import annotations

from django.conf import settings


def availability_target_pct() -> float:
    return float(getattr(settings, "SLO_AVAILABILITY_PCT", 99.9))


def success_target_pct() -> float:
    return float(getattr(settings, "SLO_SUCCESS_PCT", 99.0))


def p95_target_ms() -> float:
    return float(getattr(settings, "SLO_P95_MS", 100.0))
