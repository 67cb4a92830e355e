"""Gates over a fake cluster's view: each one's verdict, the value it shows, its reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.runbooks import gates
from console.runbooks.actions.base import StepContext
from tests.console.runbooks.fakes import FakeCluster


def context(cluster: Cluster | None = None) -> StepContext:
    return StepContext(client=FakeCluster(), heartbeat=lambda: None, cluster=cluster)


def test_quorum_survives_stopping_a_node_only_while_a_majority_stays_reachable() -> None:
    fake = FakeCluster()
    gate = gates.quorum_survives_stopping("unrdf-daemon-1")
    assert gate.check(fake.view(), context()).ok

    fake.nodes["unrdf-daemon-2"].reachable = False
    result = gate.check(fake.view(), context())

    assert not result.ok
    assert result.value == {"reachable": 1, "needed": 2, "size": 3}
    assert result.reason == (
        "without unrdf-daemon-1, 1 of 3 nodes would be reachable; a majority (2) must be"
    )


def test_a_majority_must_keep_serving_without_the_node_to_drain() -> None:
    fake = FakeCluster(size=5)
    fake.nodes["unrdf-daemon-3"].draining = True
    gate = gates.majority_serving_without("unrdf-daemon-4")
    assert gate.check(fake.view(), context()).value == {"serving": 3, "needed": 3, "size": 5}

    fake.nodes["unrdf-daemon-2"].reachable = False
    assert not gate.check(fake.view(), context()).ok


def test_caught_up_shows_the_lag_and_refuses_a_lagging_or_unknown_one() -> None:
    fake = FakeCluster()
    gate = gates.caught_up("unrdf-daemon-2", max_lag_ms=100, max_lag_entries=50)
    assert gate.check(fake.view(), context()) == gates.GateResult(
        True, {"lagMs": 1.0, "lagEntries": 0}, ""
    )

    fake.nodes["unrdf-daemon-2"].lag_entries = 51
    behind = gate.check(fake.view(), context())
    assert not behind.ok and "lags 1 ms / 51 entries behind the leader" in behind.reason

    fake.nodes["unrdf-daemon-2"].lag_ms = None
    assert gate.check(fake.view(), context()).reason == (
        "node unrdf-daemon-2's replication lag is unknown to the leader"
    )
    gone = gates.caught_up("ghost", 100, 50).check(fake.view(), context())
    assert (gone.ok, gone.value, gone.reason) == (False, None, "node ghost is no longer a member")


def test_has_quorum_needs_a_leader() -> None:
    fake = FakeCluster()
    assert gates.has_quorum().check(fake.view(), context()).ok
    fake.leader = None
    result = gates.has_quorum().check(fake.view(), context())
    assert not result.ok and result.value == {"leader": None, "hasQuorum": False}


@pytest.mark.django_db
def test_a_firing_critical_alert_closes_the_gate_but_warnings_and_silenced_ones_do_not() -> None:
    cluster = Cluster.objects.create(name="alerting")
    gate = gates.no_critical_alert()
    now = timezone.now()

    def alert(rule: str, severity: str, state: str, **extra: object) -> None:
        Alert.objects.create(
            cluster=cluster, rule=rule, severity=severity, state=state, summary=rule,
            pending_since=now, **extra,
        )  # fmt: skip

    alert("DaemonHighErrorRate", "warning", "firing")
    alert("DaemonDiskUsageHigh", "critical", "pending")
    alert("DaemonP95LatencyHigh", "critical", "firing", silenced_until=now + timedelta(hours=1))
    assert gate.check(FakeCluster().view(), context(cluster)).ok

    alert("DaemonClusterUnhealthy", "critical", "firing")
    result = gate.check(FakeCluster().view(), context(cluster))
    assert not result.ok and result.value == ["DaemonClusterUnhealthy"]
    assert result.reason == "critical alert firing: DaemonClusterUnhealthy"
    # Another cluster's alert is not this cluster's business.
    assert gate.check(FakeCluster().view(), context(Cluster.objects.create(name="calm"))).ok
