"""The collector against a real 3-node daemon cluster: losing nodes raises the cluster-size
alert (warning, then critical), bringing them back resolves it, all journaled."""

from __future__ import annotations

import signal

import pytest
from django.core.management import call_command

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.events.models import Event
from tests.cluster_harness import Cluster as DaemonCluster
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.cluster]


def size_alert_after_a_poll() -> Alert | None:
    call_command("collect", "--once", "--no-local", "--cluster", "real")
    return Alert.objects.filter(rule="cluster_size").order_by("-id").first()


def test_losing_nodes_fires_the_cluster_size_alert_and_recovery_resolves_it(
    daemons: DaemonCluster, settings
) -> None:
    settings.ALERT_FOR_S_CLUSTER_SIZE = 0  # the runbook's 2m, shortened for the test
    # A healthy cluster first: every member sees the other two. Just started, on a loaded
    # CI machine, a peer can miss the 0.5 s peer timeout once and count as unreachable,
    # which with the alert's delay at 0 fires it (CI, 29 Nov).
    wait_for(
        lambda: all(daemons.cluster_view(n)["reachableNodes"] == 3 for n in daemons.nodes),
        20,
        "every member to see the other two",
    )
    Cluster.objects.create(name="real", seed_urls=[n.url for n in daemons.nodes])
    assert size_alert_after_a_poll() is None

    leader = daemons.leader()
    followers = [n for n in daemons.nodes if n is not leader]
    daemons.kill(followers[0], signal.SIGKILL)
    wait_for(
        lambda: (a := size_alert_after_a_poll()) is not None and a.state == "firing",
        20,
        "the cluster-size alert to fire",
    )
    alert = Alert.objects.get(rule="cluster_size")
    assert (alert.severity, alert.value) == ("warning", 2.0)

    daemons.kill(followers[1], signal.SIGKILL)
    wait_for(
        lambda: size_alert_after_a_poll().severity == "critical",
        20,
        "the alert to escalate to critical",
    )

    for node in followers:
        daemons.start_node(node)
    daemons.wait_ready(followers)
    wait_for(lambda: size_alert_after_a_poll().state == "resolved", 30, "the alert to resolve")
    size_events = [
        (e.kind, e.payload["severity"], e.actor)
        for e in Event.objects.filter(kind__startswith="alert.").order_by("id")
        if e.payload.get("rule") == "cluster_size"
    ]
    assert size_events == [
        ("alert.pending", "warning", "collector"),
        ("alert.firing", "warning", "collector"),
        ("alert.firing", "critical", "collector"),
        ("alert.resolved", "critical", "collector"),
    ]
