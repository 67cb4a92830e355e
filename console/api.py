"""The REST API under /api/ (OpenAPI at /api/openapi.json, docs at /api/docs, offline).

Every endpoint needs a personal token (`Authorization: Bearer rop_...`) or a browser
session (plus the CSRF token on unsafe methods), except /api/health. Each app adds its
router here. Errors are JSON `{"detail": ...}`: 4xx for what the caller can fix,
502/503 when no daemon node answered; never a stack trace.
"""

from __future__ import annotations

import logging

from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Swagger
from ninja.errors import ValidationError
from ninja.responses import Status

from console.accounts.auth import api_auth
from console.clusters.daemon_client import DaemonError
from console.core.errors import RETRY_AFTER_S, UNAVAILABLE, note_unavailable

log = logging.getLogger("console.api")

api = NinjaAPI(
    title="raftops console API",
    version="1",
    description="Clusters, operations, history, alerts, runbooks and the event journal.",
    auth=api_auth,
    urls_namespace="api",
    docs_url="/docs",
    # Served from ninja's bundled static files (needs "ninja" in INSTALLED_APPS), so
    # the page works offline; no validator badge, which would call out to the internet.
    docs=Swagger(settings={"validatorUrl": None, "persistAuthorization": True}),
)


class Health(Schema):
    status: str
    database: str


@api.get("/health", response={200: Health, 503: Health}, tags=["health"], auth=None)
def health(request: HttpRequest) -> Status[Health]:
    """Liveness for load balancers: the process answers and its database does too."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as err:  # any driver error means "not ready", whatever its class
        return Status(503, Health(status="unavailable", database=type(err).__name__))
    return Status(200, Health(status="ok", database="ok"))


def _one_line_validation(errors: list[dict]) -> str:
    """`query.limit: Input should be less than or equal to 500; body.name: Field required`."""
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "; ".join(parts)


@api.exception_handler(ValidationError)
def invalid_input(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    # Keep ninja's list (machines read it) and add one line a person can read.
    errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors]
    return api.create_response(
        request, {"detail": errors, "error": _one_line_validation(errors)}, status=422
    )


@api.exception_handler(OperationalError)
def database_unavailable(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    """PostgreSQL down or the pool exhausted: the caller should retry, not file a bug."""
    note_unavailable(exc)
    response = api.create_response(request, {"detail": UNAVAILABLE}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


@api.exception_handler(DaemonError)
def daemon_failed(request: HttpRequest, exc: DaemonError) -> HttpResponse:
    """The daemon's own refusals keep their 4xx; no answer is a 502, no usable node a 503."""
    if exc.status in (400, 404, 409, 422, 429):
        status = exc.status
    elif exc.status in (401, 403):
        # The console's daemon token is wrong: not the caller's fault, a gateway problem.
        status = 502
    elif exc.status == 503:
        status = 503
    else:
        status = 502
    log.info("daemon call failed (%s -> %s): %s", exc.status, status, exc.message)
    return api.create_response(request, {"detail": exc.message}, status=status)


api.add_router("/clusters", "console.dashboard.api.router")
api.add_router("/events", "console.events.api.router")
api.add_router("/", "console.accounts.api.router")
api.add_router("/alerts", "console.alerts.api.router")
api.add_router("/runbooks", "console.runbooks.api.router")
api.add_router("/backups", "console.backups.api.router")
api.add_router("/releases", "console.releases.api.router")
api.add_router("/reports", "console.reports.api.router")
api.add_router("/notifications", "console.notifications.api.router")
api.add_router("/kubernetes-clusters", "console.dashboard.kube_clusters.router")
