"""End to end with real parts: a node of a real 3-node daemon cluster is killed, the
collector's tick fires the cluster-size alert and plans its notification, a real Celery
worker posts it to a real webhook receiver; the node comes back and the resolution
follows. Each arrives exactly once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.notifications import dispatch
from console.notifications.models import Channel, Delivery
from tests.cluster_harness import Cluster as DaemonCluster
from tests.conftest import wait_for
from tests.console.collector.support import make_collector, register, tick_until
from tests.console.notifications.support import Webhook

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]


def size_bodies(webhook: Webhook) -> list[str]:
    with webhook.lock:
        return [b["text"] for b in webhook.bodies if "cluster_size" in b["text"]]


def test_a_killed_node_reaches_the_webhook_once_and_so_does_its_recovery(
    daemons: DaemonCluster,
    webhook: Webhook,
    start_worker: Callable,
    isolated_broker,
    settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.ALERT_FOR_S_CLUSTER_SIZE = 0  # the runbook's 2m, shortened for the test
    monkeypatch.setenv("NOTIFY_CELERY_QUEUE", isolated_broker.queue)
    worker = start_worker()  # after `webhook`: the worker's environment has NOTIFY_CHAT_URL
    register(daemons)
    Channel.objects.create(
        name="chat", kind="slack", routes=["warning", "critical"], secret_env="NOTIFY_CHAT_URL"
    )
    collector = make_collector()
    tick_until(collector, lambda: Cluster.objects.get().leader_name, 30, "a leader")
    dispatch.dispatch()  # the cursor starts at the journal's head: no notifications about the past

    leader = daemons.leader()
    follower = next(n for n in daemons.nodes if n is not leader)
    daemons.kill(follower, signal.SIGKILL)
    tick_until(
        collector,
        lambda: Alert.objects.filter(rule="cluster_size", state="firing").exists(),
        30,
        "the cluster-size alert to fire",
    )
    tick_until(collector, lambda: size_bodies(webhook), 60, f"the webhook\n{worker.log()}")
    expected = "[test] WARNING cluster_size: Reachable nodes 2 nodes (warning: < 3 nodes)"
    assert size_bodies(webhook) == [expected]

    daemons.start_node(follower)
    daemons.wait_ready([follower])
    tick_until(
        collector,
        lambda: Alert.objects.filter(rule="cluster_size", state="resolved").exists(),
        30,
        "the alert to resolve",
    )
    tick_until(collector, lambda: len(size_bodies(webhook)) >= 2, 60, "the resolution")
    assert size_bodies(webhook)[1].startswith("[test] RESOLVED cluster_size")
    # More planning passes (no more ticks: a poll that times out on a loaded machine
    # would be a new, real episode) send nothing again.
    until = time.monotonic() + 4
    while time.monotonic() < until:
        dispatch.dispatch()
    first = Alert.objects.filter(rule="cluster_size").order_by("id").first()
    episode = Delivery.objects.filter(alert_id=first.pk).order_by("id")
    assert [(d.key.split(":")[0], d.status) for d in episode] == [("event", "sent")] * 2
    wait_for(
        lambda: Delivery.objects.exclude(status="sent").count() == 0, 30, "every delivery to end"
    )
    with webhook.lock:  # exactly once: one body per delivery, whatever else happened
        assert len(webhook.bodies) == Delivery.objects.filter(status="sent").count()
