"""/api/events: cursor pages by id, filters, and no gaps or repeats while events arrive."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.clusters.models import Cluster
from console.events import journal
from console.events.api import SETTLE_S
from console.events.models import Event

pytestmark = pytest.mark.django_db


def read_all(
    viewer_client: Client, after: int, query: str = "", limit: int = 3
) -> tuple[list[int], int]:
    ids: list[int] = []
    while True:
        page = viewer_client.get(f"/api/events?after={after}&limit={limit}{query}").json()
        ids += [item["id"] for item in page["items"]]
        if not page["items"]:
            return ids, page["next_after"]
        after = page["next_after"]


def test_reading_on_from_next_after_sees_each_event_once_while_more_arrive(viewer_client) -> None:
    first = [journal.append("node.recovered", actor="collector", node=f"n{i}").id for i in range(7)]
    seen, cursor = read_all(viewer_client, 0)
    assert seen == first
    later = [
        journal.append("lag.normal", actor="collector", node="n1", lag_ms=1.0).id for _ in range(5)
    ]
    more, cursor = read_all(viewer_client, cursor)
    assert more == later
    assert read_all(viewer_client, cursor) == ([], cursor)


def test_an_empty_page_keeps_the_cursor_where_it_was(viewer_client) -> None:
    page = viewer_client.get("/api/events?after=123").json()
    assert page == {"items": [], "next_after": 123}


def test_events_are_filtered_by_cluster_kind_prefix_and_actor(viewer_client) -> None:
    c1 = Cluster.objects.create(name="c1")
    journal.append("leader.changed", actor="collector", cluster=c1, to="n1")
    journal.append("alert.firing", actor="collector", cluster=c1, rule="lag")
    journal.append("alert.resolved", actor="system", rule="lag")
    journal.append("token.created", actor="alice", token_id=1, name="x")

    def kinds(query: str) -> list[str]:
        return [e["kind"] for e in viewer_client.get(f"/api/events?{query}").json()["items"]]

    assert kinds("cluster=c1") == ["leader.changed", "alert.firing"]
    assert kinds("kind=alert.") == ["alert.firing", "alert.resolved"]
    assert kinds("kind=alert.firing") == ["alert.firing"]
    assert kinds("actor=alice") == ["token.created"]


def test_an_event_carries_who_what_when_and_where(viewer_client) -> None:
    cluster = Cluster.objects.create(name="c1")
    event = journal.append("operation.defined", actor="bob", cluster=cluster, operation_id="op")
    item = viewer_client.get("/api/events").json()["items"][0]
    assert item["id"] == event.id
    assert item["actor"] == "bob" and item["cluster"] == "c1"
    assert item["payload"] == {"operation_id": "op"}
    assert item["at"]


def test_a_page_stops_before_a_recent_hole_in_the_ids(viewer_client) -> None:
    # An id missing just before a fresh event is probably a transaction still in flight:
    # moving the cursor past it would lose that event for good.
    before = journal.append("node.recovered", actor="collector", node="a")
    hole = Event.objects.create(kind="x", actor="t")
    after = journal.append("node.recovered", actor="collector", node="b")
    Event.objects.filter(pk=hole.pk).delete()  # as if its transaction had not committed yet
    page = viewer_client.get(f"/api/events?after={before.id - 1}").json()
    assert [e["id"] for e in page["items"]] == [before.id]
    assert page["next_after"] == before.id
    # Once the later event is older than the settle time, the hole was a rollback.
    Event.objects.filter(pk=after.pk).update(at=timezone.now() - timedelta(seconds=SETTLE_S + 1))
    page = viewer_client.get(f"/api/events?after={before.id}").json()
    assert [e["id"] for e in page["items"]] == [after.id]


def test_bad_cursor_values_are_a_422(viewer_client) -> None:
    assert viewer_client.get("/api/events?after=-1").status_code == 422
    assert viewer_client.get(f"/api/events?after={2**64}").status_code == 422
    assert viewer_client.get("/api/events?limit=100000").status_code == 422
