"""Evaluate the alert rules for one cluster: the collector calls this after each poll.

Per (cluster, rule) an alert moves pending → firing → resolved, like Prometheus:
- the condition holds and no alert is open: open one as `pending` (pending_since=now);
- it has held for the rule's `for:` duration: `firing` (fired_at=now);
- it no longer holds: `resolved` (resolved_at=now). A pending alert that clears is
  resolved too (with no fired_at), so every `alert.pending` event has a matching end
  and the page can show "cleared before firing";
- it gets worse (warning → critical) while open: the severity is raised and the current
  state's event is appended again with `previous_severity`. Severity never goes back
  down within an episode, so a value wobbling around the critical line does not flap.

Every transition is a conditional UPDATE (or an INSERT guarded by the partial unique
constraint) in the same transaction as its event, so evaluating twice at the same time,
or from two processes at once, appends each event exactly once.

Where the values come from, and why:
- cluster_size: Node rows (reachable, not removed) against max(Cluster.cluster_size,
  known members): node state is what the collector updates on every poll.
- success_rate, p95_latency, disk_usage: the latest Sample no older than
  ALERT_SAMPLE_MAX_AGE_S (default 60 s); an older or missing sample means "unknown",
  which resolves, as Prometheus does when a series disappears. Disk usage is the
  sample's max_disk_usage fraction, in percent.
- error_count: mirrored Execution rows with status failure or timeout that finished in
  the hour before `now`. The feed is mirrored without gaps, so this is an exact count
  per hour, where Sample.error_count is a daemon rollup counter whose window we do not
  control.
- replication_lag: the largest lag_ms of reachable members (an unreachable node's
  last lag is stale), else Cluster.replication_lag_ms.
"""

from __future__ import annotations

import datetime as dt
import os

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from console.alerts.models import ACTIVE_STATES, Alert
from console.alerts.rules import RULES, Rule, Threshold, cluster_size_rule, for_seconds
from console.clusters.models import Cluster, Execution, Sample
from console.events import journal

ACTOR = "collector"
SEVERITY_RANK = {"warning": 1, "critical": 2}
ERROR_STATUSES = ("failure", "timeout")
ERROR_WINDOW = dt.timedelta(hours=1)


def evaluate_cluster(cluster: Cluster, now: dt.datetime | None = None) -> None:
    """Bring every rule's alert for `cluster` up to date with what the DB says at `now`."""
    now = now or timezone.now()
    observed = observe(cluster, now)
    open_alerts = {
        alert.rule: alert
        for alert in Alert.objects.filter(cluster=cluster, state__in=ACTIVE_STATES)
    }
    size = _expected_size(cluster)
    for rule in RULES:
        if rule.name == "cluster_size":
            if size == 0:
                continue  # never polled: no members known, nothing to judge
            rule = cluster_size_rule(size)
        evaluate_rule(cluster, rule, observed.get(rule.name), now, open_alerts.get(rule.name))


def observe(cluster: Cluster, now: dt.datetime) -> dict[str, float | None]:
    """The value each rule judges, or None where the collector has nothing recent."""
    members = cluster.nodes.filter(removed=False)
    reachable = members.filter(reachable=True)
    sample = _latest_sample(cluster, now)
    lag_ms = reachable.aggregate(lag=Max("lag_ms"))["lag"]
    if lag_ms is None and cluster.last_polled_at is not None:
        lag_ms = cluster.replication_lag_ms
    errors = Execution.objects.filter(
        cluster=cluster,
        status__in=ERROR_STATUSES,
        finished_at__gt=now - ERROR_WINDOW,
        finished_at__lte=now,
    ).count()
    disk = sample.max_disk_usage if sample else None
    return {
        "cluster_size": float(reachable.count()),
        "success_rate": sample.success_rate if sample else None,
        "p95_latency": sample.p95_ms if sample else None,
        "error_count": float(errors),
        "replication_lag": lag_ms,
        "disk_usage": round(disk * 100.0, 2) if disk is not None else None,
    }


def evaluate_rule(
    cluster: Cluster,
    rule: Rule,
    observed: float | None,
    now: dt.datetime,
    alert: Alert | None,
) -> Alert | None:
    """One step of the state machine for one rule; returns the open alert, if any."""
    verdict = rule.severity_of(observed)
    if verdict is None:
        if alert is not None:
            _resolve(alert, observed, now)
        return None
    severity, threshold = verdict
    assert observed is not None  # a verdict needs a value
    if alert is None:
        alert = _open(cluster, rule, severity, threshold, observed, now)
        if alert is None:
            return None  # another evaluator opened it first and journaled it
    elif SEVERITY_RANK[severity] > SEVERITY_RANK[alert.severity]:
        _escalate(alert, rule, severity, threshold, observed, now)
    elif alert.value != observed:
        # The current value is shown on the page; it is not a transition, so no event.
        # The summary names the band the value is in now; the severity stays the worst seen.
        summary = rule.summary(observed, severity, threshold)
        Alert.objects.filter(pk=alert.pk).update(value=observed, summary=summary, updated_at=now)
        alert.value, alert.summary = observed, summary
    if alert.state == "pending" and now - alert.pending_since >= _for(rule):
        _fire(alert, now)
    return alert


def _open(
    cluster: Cluster,
    rule: Rule,
    severity: str,
    threshold: Threshold,
    observed: float,
    now: dt.datetime,
) -> Alert | None:
    silence = _silence_in_force(cluster, rule.name, now)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                cluster=cluster,
                rule=rule.name,
                severity=severity,
                state="pending",
                value=observed,
                threshold=threshold.value,
                summary=rule.summary(observed, severity, threshold),
                pending_since=now,
                silenced_until=silence.silenced_until if silence else None,
                silenced_by=silence.silenced_by if silence else None,
            )
            _journal("alert.pending", alert)
    except IntegrityError:
        # The partial unique constraint: someone else holds the open episode.
        return None
    return alert


def _fire(alert: Alert, now: dt.datetime) -> None:
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, state="pending").update(
            state="firing", fired_at=now, updated_at=now
        )
        if changed:
            alert.state, alert.fired_at = "firing", now
            _journal("alert.firing", alert)


def _escalate(
    alert: Alert,
    rule: Rule,
    severity: str,
    threshold: Threshold,
    observed: float,
    now: dt.datetime,
) -> None:
    previous = alert.severity
    summary = rule.summary(observed, severity, threshold)
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, state=alert.state, severity=previous).update(
            severity=severity,
            threshold=threshold.value,
            value=observed,
            summary=summary,
            updated_at=now,
        )
        if changed:
            alert.severity, alert.threshold = severity, threshold.value
            alert.value, alert.summary = observed, summary
            _journal(f"alert.{alert.state}", alert, previous_severity=previous)


def _resolve(alert: Alert, observed: float | None, now: dt.datetime) -> None:
    with transaction.atomic():
        changed = Alert.objects.filter(pk=alert.pk, state__in=ACTIVE_STATES).update(
            state="resolved", resolved_at=now, updated_at=now
        )
        if changed:
            alert.state, alert.resolved_at = "resolved", now
            # The row keeps the last breaching value; the event says what cleared it.
            _journal("alert.resolved", alert, value=observed)


def _journal(kind: str, alert: Alert, **extra: object) -> None:
    payload = {
        "alert_id": alert.pk,
        "rule": alert.rule,
        "severity": alert.severity,
        "value": alert.value,
        "threshold": alert.threshold,
        "summary": alert.summary,
    }
    payload.update(extra)
    journal.append(kind, actor=ACTOR, cluster=alert.cluster, **payload)


def _silence_in_force(cluster: Cluster, rule_name: str, now: dt.datetime) -> Alert | None:
    """A silence outlives the episode it was set on: "silence until 14:00" means it."""
    return (
        Alert.objects.filter(cluster=cluster, rule=rule_name, silenced_until__gt=now)
        .order_by("-silenced_until")
        .first()
    )


def _for(rule: Rule) -> dt.timedelta:
    return dt.timedelta(seconds=for_seconds(rule))


def _expected_size(cluster: Cluster) -> int:
    return max(cluster.cluster_size, cluster.nodes.filter(removed=False).count())


def _latest_sample(cluster: Cluster, now: dt.datetime) -> Sample | None:
    max_age = dt.timedelta(seconds=_sample_max_age_s())
    return (
        Sample.objects.filter(cluster=cluster, at__lte=now, at__gte=now - max_age)
        .order_by("-at")
        .first()
    )


def _sample_max_age_s() -> float:
    value = getattr(settings, "ALERT_SAMPLE_MAX_AGE_S", None) or os.environ.get(
        "ALERT_SAMPLE_MAX_AGE_S"
    )
    return float(value) if value else 60.0
