"""The collector names a split brain: a node claiming leadership without a
majority, or two nodes each claiming it, raise the critical split_brain alert."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.collector.observe import NodePoll, Observation, Target
from console.collector.split_brain import claimants, evaluate_split_brain
from console.events.models import Event
from daemon.contract import NodeHealth

pytestmark = pytest.mark.django_db


def view(name: str, role: str, term: int = 3, has_quorum: bool = True) -> NodeHealth:
    return NodeHealth(
        name=name,
        role=role,
        term=term,
        commit_index=10,
        applied_index=10,
        last_log_index=10,
        digest="d",
        draining=False,
        version="1",
        leader=name if role == "leader" else "n0",
        has_quorum=has_quorum,
        ready=True,
    )


def observation(*views: NodeHealth | None, at: dt.datetime | None = None) -> Observation:
    polls = [
        NodePoll(Target(f"http://127.0.0.1:{9000 + i}", None), view=v, error=None if v else "down")
        for i, v in enumerate(views)
    ]
    return Observation(at=at or timezone.now(), polls=polls, summary=None)


def test_one_leader_with_quorum_is_no_split_brain() -> None:
    obs = observation(view("n0", "leader"), view("n1", "follower"), None)
    assert claimants(obs) == ([], "")


def test_a_leader_without_quorum_is_named() -> None:
    obs = observation(view("n0", "leader", has_quorum=False), view("n1", "follower"))
    names, why = claimants(obs)
    assert names == ["n0"]
    assert "n0 claims leadership without quorum" in why


def test_two_nodes_claiming_leadership_fire_a_critical_alert_naming_both(settings) -> None:
    settings.ALERT_FOR_S_SPLIT_BRAIN = 5
    cluster = Cluster.objects.create(name="sb", seed_urls=["http://127.0.0.1:9000"])
    start = timezone.now()
    split = observation(
        view("n0", "leader", term=3), view("n1", "follower"), view("n2", "leader", term=4)
    )
    alert = evaluate_split_brain(cluster, split, start)
    assert alert is not None and alert.state == "pending" and alert.severity == "critical"
    assert "n0" in alert.summary and "n2" in alert.summary, alert.summary
    # Still two leaders past the `for:` duration: it fires.
    alert = evaluate_split_brain(cluster, split, start + dt.timedelta(seconds=6))
    assert alert is not None and alert.state == "firing"
    # One leader with a majority again: resolved, and every step journaled.
    healed = observation(
        view("n0", "follower", term=4), view("n1", "follower"), view("n2", "leader", term=4)
    )
    assert evaluate_split_brain(cluster, healed, start + dt.timedelta(seconds=7)) is None
    assert Alert.objects.get(rule="split_brain").state == "resolved"
    kinds = [
        e.kind
        for e in Event.objects.filter(kind__startswith="alert.").order_by("id")
        if e.payload.get("rule") == "split_brain"
    ]
    assert kinds == ["alert.pending", "alert.firing", "alert.resolved"]


def test_a_deposed_leader_that_steps_down_within_the_for_duration_never_fires(settings) -> None:
    settings.ALERT_FOR_S_SPLIT_BRAIN = 15
    cluster = Cluster.objects.create(name="sb2", seed_urls=["http://127.0.0.1:9000"])
    start = timezone.now()
    transient = observation(view("n0", "leader", term=3), view("n1", "leader", term=4))
    evaluate_split_brain(cluster, transient, start)
    after = observation(view("n0", "follower", term=4), view("n1", "leader", term=4))
    evaluate_split_brain(cluster, after, start + dt.timedelta(seconds=2))
    alert = Alert.objects.get(rule="split_brain")
    assert alert.state == "resolved" and alert.fired_at is None
