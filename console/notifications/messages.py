"""What a delivery says: one Message built from its journal event, alert or report,
then shaped per channel kind (Slack-compatible JSON, PagerDuty Events v2, e-mail)."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.events.models import Event
from console.notifications.models import Delivery
from console.reports.daily import daily_report
from console.reports.monthly import monthly_report
from console.reports.weekly import weekly_report


@dataclass(frozen=True)
class Message:
    title: str
    text: str
    severity: str
    cluster: str
    dedup_key: str  # PagerDuty incident key: firing and resolved of one alert share it
    resolve: bool = False  # PagerDuty: resolves dedup_key instead of triggering
    facts: dict[str, str] = field(default_factory=dict)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def _alert_message(event: Event, delivery: Delivery) -> Message:
    p = event.payload
    alert = Alert.objects.filter(pk=p.get("alert_id")).select_related("acknowledged_by").first()
    cluster = event.cluster.name if event.cluster_id else delivery.cluster_name
    acked = alert.acknowledged_by.username if alert and alert.acknowledged_by else None
    facts = {"rule": str(p.get("rule", alert.rule if alert else "")), "cluster": cluster}
    if acked:
        facts["acknowledged by"] = acked
    if event.kind == "alert.acknowledged":
        rule = alert.rule if alert else "alert"
        title = f"[{cluster}] acknowledged: {rule} by {event.actor}"
        text = p.get("comment") or (alert.summary if alert else "")
    elif event.kind == "alert.resolved":
        title = f"[{cluster}] RESOLVED {p.get('rule')}: {p.get('summary')}"
        text = f"resolved; acknowledged by {acked}" if acked else "resolved"
    else:
        title = (
            f"[{cluster}] {str(p.get('severity', '')).upper()} {p.get('rule')}: {p.get('summary')}"
        )
        text = f"value {p.get('value')}, threshold {p.get('threshold')}"
    return Message(
        title=title,
        text=text,
        severity=delivery.severity,
        cluster=cluster,
        dedup_key=f"raftops-alert-{p.get('alert_id')}",
        resolve=event.kind == "alert.resolved",
        facts=facts,
    )


def _run_message(event: Event, delivery: Delivery) -> Message:
    p = event.payload
    cluster = event.cluster.name if event.cluster_id else delivery.cluster_name
    status = p.get("status")
    needs = " (needs an operator)" if status in ("stale", "needs_operator") else ""
    return Message(
        title=f"[{cluster}] runbook run #{p.get('run_id')} {status}{needs}",
        text=p.get("error") or "",
        severity=delivery.severity,
        cluster=cluster,
        dedup_key=f"raftops-run-{p.get('run_id')}",
        facts={"run": str(p.get("run_id")), "status": str(status), "cluster": cluster},
    )


def _report_message(delivery: Delivery) -> Message:
    p = delivery.payload
    cluster = Cluster.objects.get(name=p["cluster"])
    name = p["report"]
    if name == "daily":
        r = daily_report(cluster)
        text = (
            f"leader {r.leader or 'none'}, quorum {'yes' if r.has_quorum else 'NO'}, "
            f"{r.reachable_nodes}/{r.cluster_size} nodes reachable; {r.operations} operations, "
            f"success {_pct(r.success_rate_pct)}, {r.errors} failed; {r.alerts_fired} alerts "
            f"fired; {len(r.leader_changes)} leader changes; {len(r.runs)} runbook runs"
        )
    elif name == "weekly":
        r = weekly_report(cluster)
        p95 = "n/a" if r.p95_ms is None else f"{r.p95_ms:.1f} ms"
        text = (
            f"7 days: {r.operations} operations, success {_pct(r.success_rate_pct)} "
            f"(target {r.success_target_pct} %), p95 {p95} (target {r.p95_target_ms:.0f} ms); "
            f"newer verified releases: {', '.join(r.newer_releases) or 'none'}; {r.backups_note}"
        )
    else:
        year, month = (int(x) for x in p["period"].split("-"))
        r = monthly_report(cluster, year, month)
        text = (
            f"{r.month}: availability {_pct(r.availability_pct)} (target "
            f"{r.availability_target_pct} %), success {_pct(r.success_rate_pct)}, "
            f"{r.errors} errors, {r.failovers} failovers, {len(r.incidents)} incidents"
        )
    return Message(
        title=f"[{cluster.name}] {name} report {p['period']}",
        text=text,
        severity="report",
        cluster=cluster.name,
        dedup_key=delivery.key,
    )


def build(delivery: Delivery) -> Message:
    p = delivery.payload
    if p.get("test"):
        return Message(
            title=f"raftops test notification for channel {delivery.channel.name}",
            text=f"sent by {p.get('by', 'an admin')}; if you read this, the channel works",
            severity="info",
            cluster=delivery.cluster_name,
            dedup_key=delivery.key,
        )
    if p.get("report"):
        return _report_message(delivery)
    if p.get("repeat"):
        alert = Alert.objects.get(pk=delivery.alert_id)
        return Message(
            title=f"[{alert.cluster.name}] STILL FIRING {alert.rule}: {alert.summary}",
            text="unacknowledged; acknowledge it to stop these reminders",
            severity=delivery.severity,
            cluster=alert.cluster.name,
            dedup_key=f"raftops-alert-{alert.pk}",
        )
    event = Event.objects.select_related("cluster").get(pk=delivery.event_id)
    if event.kind.startswith("alert."):
        return _alert_message(event, delivery)
    return _run_message(event, delivery)


def slack_body(message: Message) -> dict:
    """Slack's incoming-webhook shape (`text` plus attachment fields); Mattermost and
    Rocket.Chat accept it too."""
    return {
        "text": message.title,
        "attachments": [
            {
                "color": {"critical": "danger", "warning": "warning"}.get(message.severity, "good"),
                "text": message.text,
                "fields": [
                    {"title": k, "value": v, "short": True} for k, v in message.facts.items()
                ],
            }
        ],
    }


def pagerduty_body(message: Message, routing_key: str) -> dict:
    if message.resolve:
        return {
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": message.dedup_key,
        }
    severity = {"critical": "critical", "warning": "warning"}.get(message.severity, "info")
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": message.dedup_key,
        "payload": {
            "summary": message.title[:1024],
            "source": f"raftops/{message.cluster}",
            "severity": severity,
            "custom_details": {"text": message.text, **message.facts},
        },
    }


def email_text(message: Message) -> str:
    lines = [message.text, ""]
    lines += [f"{k}: {v}" for k, v in message.facts.items()]
    return "\n".join(lines).strip() + "\n"
