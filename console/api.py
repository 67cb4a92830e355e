"""The REST API under /api/ (OpenAPI docs at /api/docs). Apps add their routers here."""

from django.db import connection
from ninja import NinjaAPI, Schema
from ninja.responses import Status

api = NinjaAPI(title="raftops console API", version="1", docs_url="/docs")


class Health(Schema):
    status: str
    database: str


@api.get("/health", response={200: Health, 503: Health}, tags=["health"])
def health(request) -> Status[Health]:
    """Liveness for load balancers: the process answers and its database does too."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as err:  # any driver error means "not ready", whatever its class
        return Status(503, Health(status="unavailable", database=type(err).__name__))
    return Status(200, Health(status="ok", database="ok"))
