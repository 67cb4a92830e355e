"""Security headers Django 5.2 does not set itself, and the debug-page masking.

The console's pages load scripts and styles from /static/ only (no CDN, no inline
script), so the Content-Security-Policy allows 'self' for scripts. Styles also allow
'unsafe-inline': a few templates and uPlot/Swagger UI set inline styles, which cannot
run code. WebSockets to the same origin are 'self' under CSP 3.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.views.debug import SafeExceptionReporterFilter

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class MaskingReporterFilter(SafeExceptionReporterFilter):
    """Django masks settings named like API/TOKEN/KEY/SECRET/PASS; URLs carry
    credentials too (CELERY_BROKER_URL, REDIS_URL, DATABASE_URL, CHANNEL_LAYERS)."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|BROKER|REDIS|CHANNEL|DATABASE|"
        "CACHES|DSN|AUTH",
        flags=re.IGNORECASE,
    )
