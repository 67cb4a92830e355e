"""End to end with a real Prometheus: it scrapes a real 3-node cluster under
job="daemon" with the real rules loaded (a copy with one-second evaluation and short
`for:`), a node is killed, DaemonClusterUnhealthy goes pending then firing through
Prometheus's own API, the node restarts and the alert resolves; Prometheus sends it to
a real Alertmanager running deploy/monitoring/alertmanager.yml (webhook receivers),
which delivers the firing and the resolution to the P2 (chat) receiver."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.cluster_harness import Cluster, wait_for
from tests.deploy.monitoring_stack import (
    Service,
    WebhookReceiver,
    alert_state,
    alertmanager,
    prometheus,
    webhook_alertmanager_config,
)
from tests.deploy.test_dashboard import dashboard_queries
from tests.deploy.tools import MONITORING

pytestmark = pytest.mark.cluster

ALERT = "DaemonClusterUnhealthy"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("prom-cluster"), size=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop_all()


@pytest.fixture(scope="module")
def hooks() -> Iterator[WebhookReceiver]:
    with WebhookReceiver().running() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def prom(
    cluster: Cluster, hooks: WebhookReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """Prometheus -> the real Alertmanager config (webhook receivers) -> `hooks`."""
    directory = tmp_path_factory.mktemp("monitoring")
    with alertmanager(directory, webhook_alertmanager_config(directory, hooks)) as am:
        targets = [f"127.0.0.1:{n.http_port}" for n in cluster.nodes]
        with prometheus(directory, targets, alertmanager=f"127.0.0.1:{am.port}") as service:
            yield service


def _query(prom: Service, expr: str) -> list[dict]:
    body = httpx.get(prom.url + "/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def _up_count(prom: Service) -> float | None:
    result = _query(prom, 'sum(up{job="daemon"})')
    return float(result[0]["value"][1]) if result else None


def test_every_daemon_metric_the_rules_and_dashboard_use_is_one_the_daemon_exports(
    cluster: Cluster,
) -> None:
    # Per-peer lag is exported by the leader only, so read every node's exposition.
    exported: set[str] = set()
    for node in cluster.nodes:
        text = cluster.get(node, "/metrics", headers={"Accept": "text/plain"}).text
        exported |= set(re.findall(r"^(daemon_\w+?)(?:\{| )", text, re.MULTILINE))
    rules = yaml.safe_load((MONITORING / "rules" / "daemon-rules.yml").read_text())
    exprs = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    exprs += " ".join(dashboard_queries())
    used = set(re.findall(r"\bdaemon_\w+", exprs))
    assert len(used) >= 5, used
    assert used <= exported, f"not exported: {sorted(used - exported)}"


def test_prometheus_scrapes_every_node_as_job_daemon(prom: Service) -> None:
    wait_for(lambda: _up_count(prom) == 3, timeout=30, what="3 targets up\n" + prom.log())
    assert _query(prom, 'sum(daemon_raft_is_leader{job="daemon"})')[0]["value"][1] == "1"


def test_every_dashboard_query_runs_on_real_data(prom: Service) -> None:
    wait_for(lambda: _up_count(prom) == 3, timeout=30, what="3 targets up")
    for query in dashboard_queries():
        _query(prom, query)  # asserts Prometheus answered "success"


def test_a_killed_node_raises_the_cluster_alert_pending_then_firing_and_resolves_on_restart(
    cluster: Cluster, prom: Service, hooks: WebhookReceiver
) -> None:
    wait_for(lambda: _up_count(prom) == 3, timeout=30, what="3 targets up")
    # Before the first scrape there is no target at all, which the rule counts as a
    # cluster of none: wait for that start-up alert to clear.
    wait_for(lambda: alert_state(prom, ALERT) is None, timeout=30, what=f"no {ALERT} at rest")
    hooks.received.clear()
    victim = cluster.nodes[2]
    cluster.kill(victim)
    wait_for(lambda: _up_count(prom) == 2, timeout=15, what="the scrape to see the node down")
    wait_for(
        lambda: alert_state(prom, ALERT) == "pending",
        timeout=10,
        interval=0.1,
        what=f"{ALERT} pending",
    )
    wait_for(lambda: alert_state(prom, ALERT) == "firing", timeout=20, what=f"{ALERT} firing")
    # One member down keeps quorum: the page-worthy alert must not fire.
    assert alert_state(prom, "DaemonClusterDown") is None

    cluster.start_node(victim)
    cluster.wait_ready([victim])
    wait_for(lambda: alert_state(prom, ALERT) is None, timeout=30, what=f"{ALERT} resolved")

    # Through Alertmanager to the P2 receiver (chat): the firing, then the resolution.
    def chat(status: str) -> bool:
        return any(
            a["labels"]["alertname"] == ALERT and a["status"] == status
            for a in hooks.alerts_at("/chat")
        )

    wait_for(lambda: chat("resolved"), timeout=30, what=f"{ALERT} resolved at /chat")
    assert chat("firing")
