"""What a request gets when the console's own database cannot be reached.

A PostgreSQL that is down, restarting or out of connections (the pool waited
DB_POOL_TIMEOUT) is the operator's outage, not a console bug: answer 503 with
Retry-After, which load balancers and scripts treat as "try again", instead of 500.
"""

from __future__ import annotations

import logging
import sys

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.views import defaults

log = logging.getLogger("console.errors")

RETRY_AFTER_S = 5
UNAVAILABLE = "the console's database is unavailable; retry shortly"


def note_unavailable(exc: BaseException) -> None:
    """One log line (the driver's message can span several)."""
    log.warning("database unavailable: %s", (str(exc).splitlines() or [type(exc).__name__])[0])


def unavailable_response(exc: BaseException) -> HttpResponse:
    note_unavailable(exc)
    return HttpResponse(
        f"503 Service Unavailable: {UNAVAILABLE}.\n",
        status=503,
        content_type="text/plain; charset=utf-8",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: Django calls it while handling the exception, so it can be read."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError):
        return unavailable_response(exc)
    return defaults.server_error(request)
