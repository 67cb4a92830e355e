"""The execution feed mirror: complete and duplicate-free across collector restarts and
leader changes; the only loss (the daemon's window outran us) is journaled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from console.clusters.models import Cluster, Execution
from console.collector.mirror import save_page
from console.events.models import Event
from tests.cluster_harness import ADMIN_TOKEN
from tests.cluster_harness import Cluster as DaemonCluster
from tests.console.collector.support import make_collector, tick, tick_until

OP = {"id": "mirror-op", "name": "mirror", "handler": {"kind": "noop"}}


class Load:
    """Executes the operation on any live node, as fast as it can, until stopped."""

    def __init__(self, daemons: DaemonCluster) -> None:
        self.daemons = daemons
        self.stop = threading.Event()
        self.done = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(timeout=5, headers=headers) as http:
            while not self.stop.is_set():
                for node in self.daemons.live_nodes():
                    try:
                        if http.post(f"{node.url}/execute/{OP['id']}").status_code == 200:
                            self.done += 1
                            break
                    except httpx.HTTPError:
                        continue

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture
def load(daemons: DaemonCluster) -> Iterator[Load]:
    assert daemons.define(daemons.leader(), OP).status_code in (200, 201)
    with Load(daemons) as running:
        yield running


def daemon_feed(daemons: DaemonCluster) -> list[dict]:
    node = daemons.leader()
    records: list[dict] = []
    after = 0
    while True:
        page = daemons.get(node, f"/executions?after={after}&limit=1000").json()
        records += page["executions"]
        if not page["executions"]:
            return records
        after = page["nextAfter"]


@pytest.mark.cluster
@pytest.mark.django_db
def test_the_mirror_matches_the_feed_across_a_collector_restart_and_a_leader_change(
    daemons: DaemonCluster, watched: Cluster, load: Load
) -> None:
    first = make_collector(feed_page_limit=7)
    tick_until(first, lambda: Execution.objects.count() > 20, 20, "executions mirrored")
    # a restart: a new process with nothing in memory, only the rows
    second = make_collector(feed_page_limit=7)
    tick(second)
    before_kill = load.done
    cursor_at_kill = Cluster.objects.get(pk=watched.pk).feed_cursor
    old_leader = daemons.leader()
    daemons.kill(old_leader)
    tick_until(
        second,
        lambda: (
            load.done > before_kill + 20
            and Cluster.objects.get(pk=watched.pk).leader_name not in ("", old_leader.name)
        ),
        30,
        "executions under the new leader",
    )
    load.stop.set()
    load.thread.join(timeout=30)
    daemons.wait_converged()
    feed = daemon_feed(daemons)
    latest = feed[-1]["seq"]
    tick_until(
        second,
        lambda: Cluster.objects.get(pk=watched.pk).feed_cursor == latest,
        20,
        "the mirror to catch up",
    )
    mirrored = list(Execution.objects.filter(cluster=watched).order_by("seq"))
    assert [e.seq for e in mirrored] == list(range(1, latest + 1))
    assert [e.execution_id for e in mirrored] == [r["id"] for r in feed]
    assert 0 < cursor_at_kill < latest - 20  # mirrored both before and after the kill
    assert not Event.objects.filter(kind="executions.gap").exists()
    mirrored_events = Event.objects.filter(kind="executions.mirrored")
    assert sum(e.payload["count"] for e in mirrored_events) == latest


def record(seq: int) -> dict:
    return {
        "seq": seq,
        "id": f"exec-{seq}",
        "operationId": "op",
        "status": "success",
        "duration": 1.5,
        "startedAt": "2025-01-01T00:00:00+00:00",
        "finishedAt": "2025-01-01T00:00:01Z",
        "node": "unrdf-daemon-0",
        "attempts": 1,
        "cached": False,
        "error": None,
    }


def page(seqs: range, latest: int, oldest: int = 1, gap: bool = False) -> dict:
    records = [record(s) for s in seqs]
    return {
        "executions": records,
        "nextAfter": records[-1]["seq"] if records else latest,
        "oldestSeq": oldest,
        "latestSeq": latest,
        "gap": gap,
    }


@pytest.mark.django_db
def test_a_page_saved_twice_stores_each_execution_once() -> None:
    cluster = Cluster.objects.create(name="c")
    assert save_page(cluster.pk, 0, page(range(1, 6), latest=5)) == (5, 5)
    # a second collector (or a retried tick) read the same page from the old cursor
    assert save_page(cluster.pk, 0, page(range(1, 6), latest=5)) is None
    # a lagging node's page that overlaps what we have adds only the new tail
    assert save_page(cluster.pk, 5, page(range(3, 9), latest=8)) == (3, 8)
    assert list(Execution.objects.values_list("seq", flat=True).order_by("seq")) == list(
        range(1, 9)
    )
    row = Execution.objects.get(seq=1)
    assert row.finished_at == datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC) and row.error == ""
    cluster.refresh_from_db()
    assert cluster.feed_cursor == 8


@pytest.mark.django_db
def test_a_window_that_moved_past_the_cursor_is_journaled_as_a_gap() -> None:
    cluster = Cluster.objects.create(name="c", feed_cursor=5)
    assert save_page(cluster.pk, 5, page(range(40, 42), latest=41, oldest=40, gap=True)) == (2, 41)
    [gap] = Event.objects.filter(kind="executions.gap")
    assert gap.payload == {"from": 6, "to": 39} and gap.actor == "collector"
    assert list(Execution.objects.values_list("seq", flat=True).order_by("seq")) == [40, 41]
