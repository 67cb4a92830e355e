"""/api/alerts: list and read for everyone signed in; ack and silence for operators."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from console.accounts.models import ApiToken
from console.alerts.models import Alert
from console.events.models import Event
from tests.console.alerts.support import make_alert, make_cluster, make_user

pytestmark = pytest.mark.django_db


def bearer(role: str) -> dict[str, str]:
    _, raw = ApiToken.issue(make_user(f"{role}-user", role), "test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def post(client: Client, path: str, body: dict, headers: dict[str, str]) -> object:
    return client.post(path, body, content_type="application/json", **headers)


def journaled(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind))


def test_anonymous_callers_get_401(client: Client, alert: Alert) -> None:
    assert client.get("/api/alerts").status_code == 401
    assert post(client, f"/api/alerts/{alert.pk}/ack", {}, {}).status_code == 401


def test_a_viewer_lists_alerts_with_their_state(client: Client, alert: Alert) -> None:
    response = client.get("/api/alerts", **bearer("viewer"))
    assert response.status_code == 200
    [item] = response.json()
    assert item["id"] == alert.pk and item["cluster"] == "prod"
    assert (item["rule"], item["state"], item["severity"]) == (
        "replication_lag",
        "firing",
        "warning",
    )
    assert item["silenced"] is False and item["acknowledged_by"] is None


def test_the_list_filters_by_state_and_cluster(client: Client, alert: Alert) -> None:
    make_alert(alert.cluster, state="resolved", rule="disk_usage")
    make_alert(make_cluster("staging"), state="pending")
    headers = bearer("viewer")

    def rules(query: str) -> list[tuple[str, str]]:
        response = client.get(f"/api/alerts?{query}", **headers)
        assert response.status_code == 200, response.content
        return sorted((a["cluster"], a["rule"]) for a in response.json())

    assert rules("state=resolved") == [("prod", "disk_usage")]
    assert rules("state=active") == [("prod", "replication_lag"), ("staging", "replication_lag")]
    assert rules("state=active&cluster=staging") == [("staging", "replication_lag")]
    assert rules("cluster=prod") == [("prod", "disk_usage"), ("prod", "replication_lag")]


def test_bad_filters_are_clear_4xx(client: Client, alert: Alert) -> None:
    headers = bearer("viewer")
    assert client.get("/api/alerts?state=burning", **headers).status_code == 422
    response = client.get("/api/alerts?cluster=nowhere", **headers)
    assert response.status_code == 404 and "nowhere" in response.json()["detail"]
    assert client.get("/api/alerts?cluster=a%00b", **headers).status_code == 404
    assert client.get("/api/alerts?limit=0", **headers).status_code == 422


def test_reading_one_alert_and_an_unknown_one(client: Client, alert: Alert) -> None:
    headers = bearer("viewer")
    assert client.get(f"/api/alerts/{alert.pk}", **headers).json()["id"] == alert.pk
    assert client.get("/api/alerts/424242", **headers).status_code == 404
    assert client.get(f"/api/alerts/{2**70}", **headers).status_code == 404


def test_a_viewer_cannot_ack_or_silence(client: Client, alert: Alert) -> None:
    headers = bearer("viewer")
    assert post(client, f"/api/alerts/{alert.pk}/ack", {"comment": "x"}, headers).status_code == 403
    response = post(client, f"/api/alerts/{alert.pk}/silence", {"minutes": 5}, headers)
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_by is None and alert.silenced_until is None
    assert journaled("alert.acknowledged") == journaled("alert.silenced") == []


def test_an_operator_acks_with_a_comment_journaled_with_the_actor(
    client: Client, alert: Alert
) -> None:
    response = post(client, f"/api/alerts/{alert.pk}/ack", {"comment": "on it"}, bearer("operator"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["acknowledged_by"] == "operator-user" and body["ack_comment"] == "on it"
    [event] = journaled("alert.acknowledged")
    assert event.actor == "operator-user"
    assert event.payload == {"alert_id": alert.pk, "comment": "on it"}


def test_an_operator_silences_for_minutes_or_until_a_time(client: Client, alert: Alert) -> None:
    headers = bearer("operator")
    response = post(client, f"/api/alerts/{alert.pk}/silence", {"minutes": 30}, headers)
    assert response.status_code == 200, response.content
    assert response.json()["silenced"] is True and response.json()["silenced_by"] == "operator-user"

    until = (timezone.now() + dt.timedelta(hours=2)).replace(microsecond=0)
    response = post(
        client, f"/api/alerts/{alert.pk}/silence", {"until": until.isoformat()}, headers
    )
    assert response.status_code == 200, response.content
    alert.refresh_from_db()
    assert alert.silenced_until == until
    events = journaled("alert.silenced")
    assert [e.actor for e in events] == ["operator-user", "operator-user"]
    assert events[-1].payload == {"alert_id": alert.pk, "until": until.isoformat()}


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("ack", {"comment": "x" * 501}, 400, "longer than 500"),
        ("ack", {"comment": "a\u0000b"}, 400, "NUL"),
        ("ack", {"comment": 5}, 422, "comment"),
        ("silence", {"until": "2001-01-01T00:00:00Z"}, 400, "in the past"),
        ("silence", {"until": "9999-12-31T23:59:59-05:00"}, 400, "30 days"),
        ("silence", {"until": "2999-01-01T00:00:00Z"}, 400, "30 days"),
        ("silence", {}, 400, "either until"),
        ("silence", {"minutes": 5, "until": "2999-01-01T00:00:00Z"}, 400, "either until"),
        ("silence", {"minutes": 0}, 400, "between 1 and"),
        ("silence", {"minutes": 10**30}, 400, "between 1 and"),
        ("silence", {"until": "tomorrow"}, 422, "until"),
    ],
)
def test_bad_ack_and_silence_input_is_refused_with_a_reason(
    client: Client, alert: Alert, path: str, body: dict, status: int, words: str
) -> None:
    response = post(client, f"/api/alerts/{alert.pk}/{path}", body, bearer("operator"))
    assert response.status_code == status, response.content
    assert words in response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by is None and alert.silenced_until is None
    assert not Event.objects.filter(kind__in=["alert.acknowledged", "alert.silenced"]).exists()


def test_acting_on_an_unknown_or_resolved_alert_is_refused(client: Client, alert: Alert) -> None:
    headers = bearer("operator")
    assert post(client, "/api/alerts/424242/ack", {"comment": ""}, headers).status_code == 404
    resolved = make_alert(alert.cluster, state="resolved", rule="disk_usage")
    response = post(client, f"/api/alerts/{resolved.pk}/ack", {"comment": ""}, headers)
    assert response.status_code == 409 and "resolved" in response.json()["detail"]


def test_a_session_post_needs_the_csrf_token(alert: Alert) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("op", "operator"))
    response = client.post(
        f"/api/alerts/{alert.pk}/ack", {"comment": "x"}, content_type="application/json"
    )
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_by is None


def test_the_openapi_schema_documents_the_alert_endpoints(client: Client) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/alerts", "/api/alerts/{alert_id}/ack", "/api/alerts/{alert_id}/silence"} <= set(
        paths
    )
