"""What the collector journals, from made-up observations: once per change, never again."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone

from console.clusters.models import Cluster, Node, Sample
from console.collector.collector_config import CollectorConfig
from console.collector.observe import NodePoll, Observation, Summary, Target
from console.collector.record import Recorder, digest_mismatch
from console.collector.samples import prune_samples
from console.events.models import Event
from daemon.contract import parse_cluster_view, parse_node_health

pytestmark = pytest.mark.django_db

NAMES = ["n0", "n1", "n2"]


def observe(
    leader: str = "n0",
    down: tuple[str, ...] = (),
    members: list[str] = NAMES,
    lag: dict[str, float] | None = None,
    draining: tuple[str, ...] = (),
    digests: dict[str, tuple[int, str]] | None = None,
    quorum: bool = True,
) -> Observation:
    """An observation built from answers shaped as the daemon sends them, read through
    the same contract the collector reads real answers with."""
    polls, entries = [], []
    for name in members:
        index, digest = (digests or {}).get(name, (10, "d" * 64))
        role = "leader" if name == leader else "follower"
        up = name not in down
        target = Target(f"http://{name}", name)
        view = parse_node_health(node_answer(name, role, index, digest, name in draining))
        polls.append(NodePoll(target, view=view if up else None, queue={"active": 1, "queued": 0}))
        lag_ms = (lag or {}).get(name, 0.0)
        entries.append(
            {
                "name": name,
                "role": role if up else "unknown",
                "reachable": up,
                "draining": name in draining,
                "httpUrl": f"http://{name}",
                "lagMs": lag_ms,
            }
        )
    cluster_view = {
        "leader": leader or None,
        "replicated": True,
        "node": "n0",
        "term": 2,
        "commitIndex": 10,
        "hasQuorum": quorum,
        "clusterSize": len(members),
        "replicationLag": max((lag or {}).values(), default=0.0),
        "nodes": entries,
    }
    summary = Summary("http://n0", parse_cluster_view(cluster_view))
    return Observation(timezone.now(), polls, summary)


def node_answer(name: str, role: str, index: int, digest: str, draining: bool) -> dict:
    """A /health/node answer (only the fields the contract requires, plus disk)."""
    return {
        "name": name,
        "role": role,
        "term": 2,
        "commitIndex": index,
        "appliedIndex": index,
        "lastLogIndex": index,
        "digest": digest,
        "draining": draining,
        "version": "0.1.0",
        "leader": None,
        "hasQuorum": True,
        "ready": True,
        "disk": {"dataDirBytes": 1000, "fsUsage": 0.5},
    }


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(name="c")


@pytest.fixture
def recorder(cluster: Cluster) -> Recorder:
    recorder = Recorder(CollectorConfig())
    recorder.apply(cluster, observe())  # the first sighting
    return recorder


def kinds(after: int = 0) -> list[str]:
    return list(Event.objects.filter(id__gt=after).values_list("kind", flat=True))


def last_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_the_first_sighting_registers_members_without_a_flood_of_events(
    cluster: Cluster, recorder: Recorder
) -> None:
    assert set(Node.objects.values_list("name", flat=True)) == set(NAMES)
    assert kinds() == ["leader.changed", "cluster.quorum"]


def test_an_unchanged_cluster_appends_nothing(cluster: Cluster, recorder: Recorder) -> None:
    mark = last_id()
    for _ in range(3):
        outcome = recorder.apply(cluster, observe())
    assert kinds(mark) == [] and not outcome.changed
    assert outcome.leader_url == "http://n0"


def test_lag_over_the_threshold_is_journaled_once_and_its_return_once(
    cluster: Cluster, recorder: Recorder
) -> None:
    mark = last_id()
    recorder.apply(cluster, observe(lag={"n1": 150.0}))
    recorder.apply(cluster, observe(lag={"n1": 180.0}))
    recorder.apply(cluster, observe(lag={"n1": 20.0}))
    events = list(Event.objects.filter(id__gt=mark))
    assert [e.kind for e in events] == ["lag.high", "lag.normal"]
    assert events[0].payload == {"node": "n1", "lag_ms": 150.0, "threshold": 100.0}
    assert events[1].payload == {"node": "n1", "lag_ms": 20.0}


def test_draining_a_node_is_journaled_as_its_new_state(
    cluster: Cluster, recorder: Recorder
) -> None:
    mark = last_id()
    recorder.apply(cluster, observe(draining=("n2",)))
    recorder.apply(cluster, observe(draining=("n2",)))
    [event] = Event.objects.filter(id__gt=mark)
    assert event.kind == "node.state"
    assert event.payload == {"node": "n2", "role": "follower", "draining": True, "version": "0.1.0"}


def test_a_node_that_goes_down_and_comes_back_is_journaled_both_ways(
    cluster: Cluster, recorder: Recorder
) -> None:
    mark = last_id()
    recorder.apply(cluster, observe(down=("n1",)))
    recorder.apply(cluster, observe(down=("n1",)))
    recorder.apply(cluster, observe())
    assert kinds(mark) == ["node.unreachable", "node.recovered"]


def test_members_joining_and_leaving_are_journaled(cluster: Cluster, recorder: Recorder) -> None:
    mark = last_id()
    recorder.apply(cluster, observe(members=[*NAMES, "n3"]))
    recorder.apply(cluster, observe(members=["n0", "n1", "n3"]))
    events = list(Event.objects.filter(id__gt=mark))
    assert [(e.kind, e.payload["node"]) for e in events] == [
        ("member.added", "n3"),
        ("member.removed", "n2"),
    ]
    assert Node.objects.get(name="n2").removed
    cluster.refresh_from_db()
    assert cluster.cluster_size == 3


def test_a_leader_loss_and_a_new_leader_are_journaled(cluster: Cluster, recorder: Recorder) -> None:
    mark = last_id()
    recorder.apply(cluster, observe(leader="", down=("n0",), quorum=False))
    recorder.apply(cluster, observe(leader="n1", down=("n0",)))
    events = [(e.kind, e.payload) for e in Event.objects.filter(id__gt=mark)]
    assert events == [
        ("node.unreachable", {"node": "n0", "last_seen": events[0][1]["last_seen"]}),
        ("leader.changed", {"from": "n0", "to": None, "term": 2}),
        ("cluster.quorum", {"has_quorum": False}),
        ("node.state", {"node": "n1", "role": "leader", "draining": False, "version": "0.1.0"}),
        ("leader.changed", {"from": None, "to": "n1", "term": 2}),
        ("cluster.quorum", {"has_quorum": True}),
    ]


def test_nodes_at_the_same_index_with_different_digests_are_a_mismatch() -> None:
    assert digest_mismatch({"a": (5, "x"), "b": (5, "x"), "c": (4, "y")}) is None
    assert digest_mismatch({"a": (5, "x"), "b": (5, "y"), "c": (5, "x")}) == {
        "index": 5,
        "digests": {"a": "x", "b": "y", "c": "x"},
    }
    assert digest_mismatch({"a": (None, "x"), "b": (5, "")}) is None


def test_a_digest_mismatch_is_journaled_once_per_index(
    cluster: Cluster, recorder: Recorder
) -> None:
    mark = last_id()
    split = {"n0": (12, "a" * 64), "n1": (12, "b" * 64), "n2": (11, "c" * 64)}
    recorder.apply(cluster, observe(digests=split))
    recorder.apply(cluster, observe(digests=split))
    [event] = Event.objects.filter(id__gt=mark)
    assert event.kind == "digest.mismatch"
    assert event.payload == {"index": 12, "digests": {"n0": "a" * 64, "n1": "b" * 64}}


def test_samples_older_than_the_retention_are_pruned(cluster: Cluster) -> None:
    now = timezone.now()
    for hours in (0, 1, 23, 25, 48):
        Sample.objects.create(cluster=cluster, at=now - timedelta(hours=hours))
    assert prune_samples(now, retention_s=24 * 3600) == 2
    ages = sorted(round((now - s.at).total_seconds() / 3600) for s in Sample.objects.all())
    assert ages == [0, 1, 23]


def with_own_view(obs: Observation, name: str, **changes: object) -> Observation:
    """`obs` with `name`'s own /health/node answer changed (as if polled at another moment)."""
    for poll in obs.polls:
        if poll.name == name and poll.view is not None:
            poll.view = dataclasses.replace(poll.view, **changes)
    return obs


def test_a_node_polled_just_before_it_won_shows_as_the_leader_the_cluster_names(
    cluster: Cluster, recorder: Recorder
) -> None:
    # n1's own answer left before it won term 2; the cluster view, a moment later, names it.
    obs = with_own_view(observe(leader="n1", down=("n0",)), "n1", role="candidate", term=2)
    recorder.apply(cluster, obs)
    assert Cluster.objects.get(pk=cluster.pk).leader_name == "n1"
    assert Node.objects.get(name="n1").role == "leader"


def test_a_newer_report_from_the_node_the_cluster_names_stands(
    cluster: Cluster, recorder: Recorder
) -> None:
    # n1 already moved on to term 3 (stepped down); the cluster view is from term 2.
    obs = with_own_view(observe(leader="n1", down=("n0",)), "n1", role="follower", term=3)
    recorder.apply(cluster, obs)
    node = Node.objects.get(name="n1")
    assert (node.role, node.term) == ("follower", 3)


def test_a_sample_tick_writes_the_lag_that_moved_and_journals_its_crossing_once(
    cluster: Cluster, recorder: Recorder
) -> None:
    recorder.apply(cluster, observe())
    mark = last_id()
    lags: dict = {}
    recorder.apply_summary(cluster, observe(lag={"n1": 150.0}), lags)
    recorder.apply_summary(cluster, observe(lag={"n1": 180.0, "n2": 3.5}), lags)
    rows = dict(Node.objects.filter(cluster=cluster).values_list("name", "lag_ms"))
    assert rows == {"n0": 0.0, "n1": 180.0, "n2": 3.5}
    recorder.apply_summary(cluster, observe(lag={"n1": 20.0}), lags)
    assert Node.objects.get(cluster=cluster, name="n1").lag_ms == 20.0
    assert [e.kind for e in Event.objects.filter(id__gt=mark)] == ["lag.high", "lag.normal"]
    cluster.refresh_from_db()
    assert cluster.replication_lag_ms == 20.0 and cluster.commit_index == 10
