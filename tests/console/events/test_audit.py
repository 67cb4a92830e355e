"""The audit page /events/: who did what, when, with what outcome; filters and paging."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.clusters.models import Cluster
from console.events import journal
from console.events.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def journaled() -> dict[str, Event]:
    prod, staging = Cluster.objects.create(name="prod"), Cluster.objects.create(name="staging")
    return {
        "leader": journal.append("leader.changed", actor="collector", cluster=prod, to="n1"),
        "ack": journal.append("alert.acknowledged", actor="alice", cluster=prod, alert_id=1),
        "refused": journal.append(
            "run.refused", actor="bob", cluster=staging, run_id=3, reasons=["node unreachable"]
        ),
        "done": journal.append(
            "run.finished", actor="worker", cluster=staging, run_id=2, status="succeeded", error=""
        ),
        "token": journal.append("token.created", actor="alice", token_id=1, name="ci"),
    }


def ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-testid="event-(\d+)"', html)]


def test_every_event_is_listed_newest_first_with_actor_and_outcome(
    viewer_client: Client, journaled: dict[str, Event]
) -> None:
    html = viewer_client.get("/events/").content.decode()
    assert ids(html) == sorted((e.id for e in journaled.values()), reverse=True)
    refused_row = html.split(f'data-testid="event-{journaled["refused"].id}"')[1].split("</tr>")[0]
    assert "bob" in refused_row and "refused" in refused_row and "node unreachable" in refused_row
    done_row = html.split(f'data-testid="event-{journaled["done"].id}"')[1].split("</tr>")[0]
    assert "succeeded" in done_row


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cluster=prod", ["ack", "leader"]),
        ("actor=alice", ["token", "ack"]),
        ("kind=run.", ["done", "refused"]),
        ("kind=run.finished", ["done"]),
        ("cluster=staging&actor=bob", ["refused"]),
    ],
)
def test_filters_narrow_the_list(
    viewer_client: Client, journaled: dict[str, Event], query: str, expected: list[str]
) -> None:
    html = viewer_client.get(f"/events/?{query}").content.decode()
    assert ids(html) == [journaled[name].id for name in expected]


def test_a_time_range_filters_by_when_it_happened(
    viewer_client: Client, journaled: dict[str, Event]
) -> None:
    future = (timezone.now() + timedelta(minutes=5)).isoformat()
    assert ids(viewer_client.get("/events/", {"since": future}).content.decode()) == []
    assert len(ids(viewer_client.get("/events/", {"until": future}).content.decode())) == 5


def test_pages_go_back_by_id_without_overlap(viewer_client: Client) -> None:
    events = [journal.append("node.state", actor="collector", node=f"n{i}") for i in range(60)]
    first = viewer_client.get("/events/?kind=node.state").content.decode()
    assert ids(first) == [e.id for e in reversed(events[10:])]
    older = events[10].id
    assert f'href="?kind=node.state&amp;before={older}"' in first
    second = viewer_client.get(f"/events/?kind=node.state&before={older}").content.decode()
    assert ids(second) == [e.id for e in reversed(events[:10])]
    assert 'data-testid="older"' not in second


def test_bad_filters_are_a_400(viewer_client: Client) -> None:
    response = viewer_client.get("/events/?since=soon&before=x")
    assert response.status_code == 400
    assert b"since:" in response.content


def test_anonymous_users_cannot_read_the_journal(client: Client) -> None:
    assert client.get("/events/")["Location"].startswith("/accounts/login/")
