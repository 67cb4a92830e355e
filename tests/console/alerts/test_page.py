"""The alerts page: who sees what, and acknowledging and silencing from it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone

from console.alerts.models import Alert
from console.alerts.services import active_alerts
from console.events.models import Event
from tests.console.alerts.support import make_alert, make_cluster, make_user

pytestmark = pytest.mark.django_db


def client_for(role: str) -> Client:
    client = Client()
    client.force_login(make_user(f"{role}-user", role))
    return client


def test_anonymous_users_are_sent_to_login(client: Client, alert: Alert) -> None:
    response = client.get("/alerts/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.post(f"/alerts/{alert.pk}/ack/", {"comment": "x"})
    assert response.status_code == 302
    assert not Event.objects.filter(kind="alert.acknowledged").exists()


def test_a_viewer_sees_alerts_but_no_forms(alert: Alert) -> None:
    response = client_for("viewer").get("/alerts/")
    assert response.status_code == 200
    assert b"Replication lag 50 ms" in response.content
    assert f"/alerts/{alert.pk}/ack/".encode() not in response.content
    assert b'<form method="post" action="/alerts/' not in response.content


def test_an_operator_sees_the_ack_and_silence_forms(alert: Alert) -> None:
    response = client_for("operator").get("/alerts/")
    assert f"/alerts/{alert.pk}/ack/".encode() in response.content
    assert f"/alerts/{alert.pk}/silence/".encode() in response.content


def test_a_viewer_posting_anyway_is_refused_and_nothing_changes(alert: Alert) -> None:
    viewer = client_for("viewer")
    assert viewer.post(f"/alerts/{alert.pk}/ack/", {"comment": "mine"}).status_code == 403
    assert viewer.post(f"/alerts/{alert.pk}/silence/", {"minutes": "60"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_by is None and alert.silenced_until is None
    assert not Event.objects.filter(kind__in=["alert.acknowledged", "alert.silenced"]).exists()


def test_an_operator_acknowledges_with_a_comment_and_it_is_journaled(alert: Alert) -> None:
    response = client_for("operator").post(
        f"/alerts/{alert.pk}/ack/", {"comment": "looking at n1's disk"}, follow=True
    )
    assert response.redirect_chain[-1] == ("/alerts/", 303)
    assert b"acked by operator-user" in response.content
    alert.refresh_from_db()
    assert alert.acknowledged_by.username == "operator-user"
    assert alert.ack_comment == "looking at n1's disk"
    event = Event.objects.get(kind="alert.acknowledged")
    assert event.actor == "operator-user" and event.cluster_id == alert.cluster_id
    assert event.payload == {"alert_id": alert.pk, "comment": "looking at n1's disk"}


def test_an_operator_silences_for_an_hour_and_the_page_says_so(alert: Alert) -> None:
    before = timezone.now()
    response = client_for("operator").post(
        f"/alerts/{alert.pk}/silence/", {"minutes": "60", "until": ""}, follow=True
    )
    assert b"silenced until" in response.content
    alert.refresh_from_db()
    assert before + dt.timedelta(minutes=60) <= alert.silenced_until
    assert alert.silenced_until <= timezone.now() + dt.timedelta(minutes=60)
    assert alert.silenced_by.username == "operator-user"
    event = Event.objects.get(kind="alert.silenced")
    assert event.actor == "operator-user"
    assert event.payload["until"] == alert.silenced_until.isoformat()


def test_silencing_until_a_past_time_is_refused_with_a_reason(alert: Alert) -> None:
    response = client_for("operator").post(
        f"/alerts/{alert.pk}/silence/", {"until": "2000-01-01T00:00"}, follow=True
    )
    assert b"until is in the past" in response.content
    alert.refresh_from_db()
    assert alert.silenced_until is None
    assert not Event.objects.filter(kind="alert.silenced").exists()


def test_a_form_post_without_the_csrf_token_is_refused(alert: Alert) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("op", "operator"))
    assert client.post(f"/alerts/{alert.pk}/ack/", {"comment": "x"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_by is None


def test_acting_on_an_unknown_alert_is_a_404() -> None:
    assert client_for("operator").post("/alerts/999999/ack/", {"comment": ""}).status_code == 404


def test_resolved_alerts_are_listed_separately(alert: Alert) -> None:
    make_alert(alert.cluster, state="resolved", rule="disk_usage")
    response = client_for("viewer").get("/alerts/?cluster=prod")
    active = response.context["active"]
    assert [a.rule for a in active] == ["replication_lag"]
    assert [a.rule for a in response.context["resolved"]] == ["disk_usage"]


def test_the_dashboard_strip_shows_open_alerts_and_their_silence(alert: Alert) -> None:
    Alert.objects.filter(pk=alert.pk).update(silenced_until=timezone.now() + dt.timedelta(hours=1))
    html = render_to_string(
        "alerts/_strip.html", {"cluster": alert.cluster, "alerts": active_alerts(alert.cluster)}
    )
    assert 'data-rule="replication_lag"' in html and 'data-state="firing"' in html
    assert "silenced until" in html


def test_the_dashboard_strip_says_when_all_is_well() -> None:
    cluster = make_cluster()
    html = render_to_string("alerts/_strip.html", {"cluster": cluster, "alerts": []})
    assert "No active alerts." in html
