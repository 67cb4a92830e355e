import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_health_answers_ok_when_the_database_does(client: Client) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_api_docs_are_served(client: Client) -> None:
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/openapi.json").json()["paths"]["/api/health"]


def test_console_metrics_are_in_prometheus_format(client: Client) -> None:
    client.get("/api/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content
