"""Alert state transitions: pending → firing → resolved, with `for:` on a clock we pass in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from console.alerts.evaluate import evaluate_cluster, evaluate_rule
from console.alerts.models import Alert
from console.alerts.rules import RULES_BY_NAME
from console.clusters.models import Cluster, Sample
from console.events.models import Event
from tests.console.alerts.support import (
    T0,
    add_errors,
    add_sample,
    make_cluster,
    set_lag,
    set_reachable,
)

pytestmark = pytest.mark.django_db


def seconds(n: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=n)


def alert_events() -> list[tuple[str, str, str]]:
    return [
        (event.kind, event.payload.get("rule", ""), event.actor)
        for event in Event.objects.filter(kind__startswith="alert.").order_by("id")
    ]


def kinds() -> list[str]:
    return [kind for kind, _, _ in alert_events()]


@pytest.fixture
def cluster() -> Cluster:
    return make_cluster()


def test_a_healthy_cluster_raises_no_alert(cluster: Cluster) -> None:
    add_sample(cluster, T0)
    evaluate_cluster(cluster, T0)
    assert not Alert.objects.exists()
    assert kinds() == []


def test_lag_goes_pending_then_fires_after_its_for_duration_then_resolves(
    cluster: Cluster,
) -> None:
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    alert = Alert.objects.get()
    assert (alert.rule, alert.state, alert.severity) == ("replication_lag", "pending", "warning")
    assert alert.pending_since == T0 and alert.value == 50.0 and alert.threshold == 10

    evaluate_cluster(cluster, seconds(59))
    assert Alert.objects.get().state == "pending"

    evaluate_cluster(cluster, seconds(60))
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.fired_at == seconds(60)

    set_lag(cluster, 2.0)
    evaluate_cluster(cluster, seconds(90))
    alert = Alert.objects.get()
    assert alert.state == "resolved" and alert.resolved_at == seconds(90)
    assert alert_events() == [
        ("alert.pending", "replication_lag", "collector"),
        ("alert.firing", "replication_lag", "collector"),
        ("alert.resolved", "replication_lag", "collector"),
    ]
    resolved = Event.objects.get(kind="alert.resolved")
    assert resolved.payload["alert_id"] == alert.pk and resolved.payload["value"] == 2.0
    assert resolved.cluster_id == cluster.pk


def test_a_pending_alert_that_clears_is_resolved_without_ever_firing(cluster: Cluster) -> None:
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    set_lag(cluster, 1.0)
    evaluate_cluster(cluster, seconds(30))
    alert = Alert.objects.get()
    assert alert.state == "resolved" and alert.fired_at is None
    assert kinds() == ["alert.pending", "alert.resolved"]


def test_a_condition_that_keeps_holding_makes_one_alert_and_one_event_per_transition(
    cluster: Cluster,
) -> None:
    set_lag(cluster, 50.0)
    for second in range(0, 300, 5):
        evaluate_cluster(cluster, seconds(second))
    assert Alert.objects.count() == 1
    assert kinds() == ["alert.pending", "alert.firing"]


def test_evaluating_twice_at_the_same_time_changes_nothing_the_second_time(
    cluster: Cluster,
) -> None:
    set_lag(cluster, 50.0)
    for now in (T0, T0, seconds(60), seconds(60)):
        evaluate_cluster(cluster, now)
    set_lag(cluster, 0.0)
    evaluate_cluster(cluster, seconds(61))
    evaluate_cluster(cluster, seconds(61))
    assert kinds() == ["alert.pending", "alert.firing", "alert.resolved"]


def test_a_new_episode_after_resolution_is_a_new_alert(cluster: Cluster) -> None:
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    set_lag(cluster, 0.0)
    evaluate_cluster(cluster, seconds(1))
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, seconds(2))
    assert list(Alert.objects.order_by("id").values_list("state", flat=True)) == [
        "resolved",
        "pending",
    ]
    assert kinds() == ["alert.pending", "alert.resolved", "alert.pending"]


def test_a_firing_warning_escalates_to_critical_once_and_does_not_flap_back(
    cluster: Cluster,
) -> None:
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    evaluate_cluster(cluster, seconds(60))
    set_lag(cluster, 250.0)
    evaluate_cluster(cluster, seconds(61))
    evaluate_cluster(cluster, seconds(62))
    alert = Alert.objects.get()
    assert (alert.state, alert.severity, alert.threshold, alert.value) == (
        "firing",
        "critical",
        100,
        250.0,
    )
    escalation = Event.objects.filter(kind="alert.firing").order_by("id").last()
    assert escalation.payload["severity"] == "critical"
    assert escalation.payload["previous_severity"] == "warning"

    set_lag(cluster, 50.0)  # back in the warning band: the episode keeps its worst severity
    evaluate_cluster(cluster, seconds(63))
    alert = Alert.objects.get()
    assert (alert.severity, alert.value) == ("critical", 50.0)
    assert kinds() == ["alert.pending", "alert.firing", "alert.firing"]


def test_a_rule_whose_for_is_zero_fires_at_once(cluster: Cluster, settings) -> None:
    settings.ALERT_FOR_S_REPLICATION_LAG = 0
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    assert Alert.objects.get().state == "firing"
    assert kinds() == ["alert.pending", "alert.firing"]


def test_a_scaled_for_duration_fires_sooner(cluster: Cluster, settings) -> None:
    settings.ALERT_FOR_SCALE = 0.01  # 1m becomes 0.6 s
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    evaluate_cluster(cluster, seconds(0.5))
    assert Alert.objects.get().state == "pending"
    evaluate_cluster(cluster, seconds(0.6))
    assert Alert.objects.get().state == "firing"


Setup = Callable[[Cluster], None]


def lag(ms: float) -> Setup:
    return lambda cluster: set_lag(cluster, ms)


def reachable(count: int) -> Setup:
    return lambda cluster: set_reachable(cluster, count)


def sample(**values: float) -> Setup:
    return lambda cluster: add_sample(cluster, T0, **values) and None


def errors(count: int) -> Setup:
    return lambda cluster: add_errors(cluster, count, T0 - dt.timedelta(minutes=30))


@pytest.mark.parametrize(
    ("setup", "rule", "severity", "value"),
    [
        (reachable(2), "cluster_size", "warning", 2),
        (reachable(1), "cluster_size", "critical", 1),
        (sample(success_rate=98.5), "success_rate", "warning", 98.5),
        (sample(success_rate=97.0), "success_rate", "critical", 97.0),
        (sample(p95_ms=150.0), "p95_latency", "warning", 150.0),
        (sample(p95_ms=800.0), "p95_latency", "critical", 800.0),
        (errors(1), "error_count", "warning", 1),
        (errors(6), "error_count", "critical", 6),
        (lag(11.0), "replication_lag", "warning", 11.0),
        (lag(101.0), "replication_lag", "critical", 101.0),
        (sample(max_disk_usage=0.6), "disk_usage", "warning", 60.0),
        (sample(max_disk_usage=0.95), "disk_usage", "critical", 95.0),
    ],
)
def test_each_rule_reads_its_value_from_what_the_collector_stored(
    cluster: Cluster, setup: Setup, rule: str, severity: str, value: float
) -> None:
    setup(cluster)
    evaluate_cluster(cluster, T0)
    alert = Alert.objects.get()
    assert (alert.rule, alert.severity, alert.value) == (rule, severity, value)
    for_s = RULES_BY_NAME[rule].for_s
    keep_sampling(cluster, seconds(for_s - 1))
    evaluate_cluster(cluster, seconds(for_s - 1))
    assert Alert.objects.get().state == "pending"
    keep_sampling(cluster, seconds(for_s))
    evaluate_cluster(cluster, seconds(for_s))
    assert Alert.objects.get().state == "firing"


def keep_sampling(cluster: Cluster, now: dt.datetime) -> None:
    """The collector samples every second; a copy of the last sample stands in for that."""
    latest = Sample.objects.filter(cluster=cluster).order_by("-at").first()
    if latest is not None:
        latest.pk, latest.at = None, now
        latest.save()


def test_errors_older_than_an_hour_do_not_count(cluster: Cluster) -> None:
    add_errors(cluster, 3, T0 - dt.timedelta(minutes=61))
    evaluate_cluster(cluster, T0)
    assert not Alert.objects.exists()


def test_successful_executions_are_not_errors(cluster: Cluster) -> None:
    add_errors(cluster, 2, T0 - dt.timedelta(minutes=1))
    cluster.executions.update(status="success")
    evaluate_cluster(cluster, T0)
    assert not Alert.objects.exists()


def test_a_stale_sample_is_unknown_and_resolves_what_it_raised(cluster: Cluster) -> None:
    add_sample(cluster, T0, p95_ms=900.0)
    evaluate_cluster(cluster, T0)
    assert Alert.objects.get().state == "pending"
    evaluate_cluster(cluster, seconds(61))  # no newer sample: the collector lost sight
    assert Alert.objects.get().state == "resolved"


def test_an_unreachable_nodes_old_lag_is_not_counted(cluster: Cluster) -> None:
    set_lag(cluster, 500.0)
    cluster.nodes.filter(name="n1").update(reachable=False)
    cluster.nodes.filter(name="n2").update(lag_ms=3.0)
    evaluate_cluster(cluster, T0)
    assert list(Alert.objects.values_list("rule", flat=True)) == ["cluster_size"]


def test_a_cluster_never_polled_raises_nothing() -> None:
    cluster = Cluster.objects.create(name="new")
    evaluate_cluster(cluster, T0)
    assert not Alert.objects.exists()


def test_rules_on_one_cluster_do_not_touch_another(cluster: Cluster) -> None:
    other = make_cluster("staging")
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    evaluate_cluster(other, T0)
    assert list(Alert.objects.values_list("cluster__name", flat=True)) == ["prod"]


def test_a_silence_still_in_force_covers_the_next_episode(cluster: Cluster) -> None:
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    Alert.objects.update(silenced_until=seconds(3600))
    set_lag(cluster, 0.0)
    evaluate_cluster(cluster, seconds(10))
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, seconds(20))
    evaluate_cluster(cluster, seconds(80))
    new = Alert.objects.filter(state="firing").get()
    assert new.silenced_until == seconds(3600)  # silenced alerts still change state


def test_an_evaluator_with_a_stale_view_does_not_open_a_second_alert(cluster: Cluster) -> None:
    set_lag(cluster, 50.0)
    evaluate_cluster(cluster, T0)
    # A second evaluator that read "no open alert" before the first one committed.
    rule = RULES_BY_NAME["replication_lag"]
    assert evaluate_rule(cluster, rule, 50.0, T0, alert=None) is None
    assert Alert.objects.count() == 1
    assert kinds() == ["alert.pending"]
