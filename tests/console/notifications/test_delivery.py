"""Planning from the journal and delivering to real receivers: a webhook, PagerDuty's
Events v2 shape (to the same local receiver) and e-mail over a real SMTP server."""

from __future__ import annotations

import datetime as dt
from email.message import Message

import pytest
from django.utils import timezone

from console.alerts.models import Alert
from console.clusters.models import Cluster
from console.events import journal
from console.events.models import Event
from console.notifications import delivery, dispatch
from console.notifications.models import Channel, Delivery
from tests.console.notifications.support import Mailbox, Webhook, webhook_receiver

pytestmark = pytest.mark.django_db


def start_cursor() -> None:
    """The dispatcher's first pass only places the cursor at the journal's head."""
    assert dispatch.plan_journal() == 0


def deliver_pending() -> list[str]:
    """The worker's part, in this thread: one attempt per pending delivery."""
    return [delivery.attempt(d.pk).status for d in Delivery.objects.filter(status="pending")]


def fire(cluster: Cluster, severity: str = "warning", rule: str = "replication_lag") -> Alert:
    now = timezone.now()
    alert = Alert.objects.create(
        cluster=cluster,
        rule=rule,
        severity=severity,
        state="firing",
        value=150.0,
        threshold=100.0,
        summary="replication lag 150 ms",
        pending_since=now,
        fired_at=now,
    )
    journal_alert("alert.firing", alert)
    return alert


def journal_alert(kind: str, alert: Alert) -> None:
    journal.append(
        kind,
        actor="collector",
        cluster=alert.cluster,
        alert_id=alert.pk,
        rule=alert.rule,
        severity=alert.severity,
        value=alert.value,
        threshold=alert.threshold,
        summary=alert.summary,
    )


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(name="prod", cluster_size=3, has_quorum=True, leader_name="n0")


@pytest.fixture
def chat(webhook: Webhook) -> Channel:
    return Channel.objects.create(
        name="chat", kind="slack", routes=["warning"], secret_env="NOTIFY_CHAT_URL"
    )


def test_a_firing_alert_reaches_the_webhook_once_and_its_resolution_follows_it(
    cluster: Cluster, chat: Channel, webhook: Webhook, django_user_model
) -> None:
    start_cursor()
    alert = fire(cluster)
    dispatch.plan_journal()
    dispatch.plan_journal()  # nothing new: no second delivery
    assert deliver_pending() == ["sent"]
    assert deliver_pending() == []
    (body,) = webhook.bodies
    assert body["text"] == "[prod] WARNING replication_lag: replication lag 150 ms"
    assert webhook.paths == ["/hooks/T0/secret-token"]

    alert.acknowledged_by = django_user_model.objects.create_user("ann")
    alert.state, alert.resolved_at = "resolved", timezone.now()
    alert.save()
    journal_alert("alert.resolved", alert)
    dispatch.plan_journal()
    assert deliver_pending() == ["sent"]
    assert webhook.bodies[1]["text"].startswith("[prod] RESOLVED replication_lag")
    assert webhook.bodies[1]["attachments"][0]["text"] == "resolved; acknowledged by ann"
    attempts = Event.objects.filter(kind="notification.attempt")
    assert [(e.payload["channel"], e.payload["ok"]) for e in attempts] == [("chat", True)] * 2


def test_replanning_the_same_events_sends_nothing_twice(
    cluster: Cluster, chat: Channel, webhook: Webhook
) -> None:
    start_cursor()
    fire(cluster)
    dispatch.plan_journal()
    deliver_pending()
    # A second dispatcher that read the old cursor value loses the conditional UPDATE;
    # even with the cursor moved back by hand, (channel, key) stays unique.
    dispatch.Cursor.objects.update(last_event_id=0)
    dispatch.plan_journal()
    assert deliver_pending() == []
    assert len(webhook.bodies) == 1


def test_routing_follows_severity_and_cluster(cluster: Cluster, webhook: Webhook) -> None:
    other = Cluster.objects.create(name="other")
    Channel.objects.create(
        name="pager", kind="slack", routes=["critical"], secret_env="NOTIFY_CHAT_URL"
    )
    Channel.objects.create(
        name="other-chat",
        kind="slack",
        routes=["warning"],
        secret_env="NOTIFY_CHAT_URL",
        cluster=other,
    )
    start_cursor()
    fire(cluster, "warning")
    fire(cluster, "critical", rule="cluster_size")
    dispatch.plan_journal()
    assert [(d.channel.name, d.severity) for d in Delivery.objects.all()] == [("pager", "critical")]


def test_a_silenced_alert_is_not_sent_and_acknowledging_stops_the_reminders(
    cluster: Cluster, chat: Channel, webhook: Webhook, settings, django_user_model
) -> None:
    settings.NOTIFY_REPEAT_S = 60
    start_cursor()
    silenced = fire(cluster, rule="p95_latency")
    Alert.objects.filter(pk=silenced.pk).update(
        silenced_until=timezone.now() + dt.timedelta(hours=1)
    )
    dispatch.plan_journal()
    assert Delivery.objects.count() == 0

    alert = fire(cluster)
    dispatch.plan_journal()
    deliver_pending()
    later = timezone.now() + dt.timedelta(seconds=150)
    dispatch.plan_repeats(later)
    dispatch.plan_repeats(later)  # the same reminder period: planned once
    assert deliver_pending() == ["sent"]
    assert webhook.bodies[-1]["text"].startswith("[prod] STILL FIRING replication_lag")

    Alert.objects.filter(pk=alert.pk).update(
        acknowledged_at=timezone.now(), acknowledged_by=django_user_model.objects.create_user("al")
    )
    dispatch.plan_repeats(later + dt.timedelta(seconds=120))
    assert deliver_pending() == []
    assert len(webhook.bodies) == 2


def test_quiet_hours_hold_a_warning_until_they_end_but_never_a_critical(
    cluster: Cluster, webhook: Webhook
) -> None:
    hour = timezone.now().hour
    Channel.objects.create(
        name="chat",
        kind="slack",
        routes=["warning", "critical"],
        secret_env="NOTIFY_CHAT_URL",
        quiet_start_hour=hour,
        quiet_end_hour=(hour + 1) % 24,
    )
    start_cursor()
    fire(cluster, "warning")
    fire(cluster, "critical", rule="cluster_size")
    dispatch.plan_journal()
    held = Delivery.objects.get(severity="warning")
    assert held.not_before is not None and held.not_before > timezone.now()
    assert held.not_before.minute == 0 and held.not_before.hour == (hour + 1) % 24
    outcomes = {d.severity: delivery.attempt(d.pk) for d in Delivery.objects.all()}
    assert outcomes["critical"].status == "sent"
    assert outcomes["warning"].status == "pending" and outcomes["warning"].retry_in_s > 0
    assert len(webhook.bodies) == 1


def test_failed_attempts_retry_with_back_off_then_give_up_and_raise_a_channel_alert(
    cluster: Cluster, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_FAILING_AFTER = 2
    settings.NOTIFY_RETRY_BASE_S = 10
    with webhook_receiver(fail_first=3) as hook:
        monkeypatch.setenv("NOTIFY_CHAT_URL", hook.url)
        Channel.objects.create(
            name="chat", kind="slack", routes=["warning"], secret_env="NOTIFY_CHAT_URL"
        )
        start_cursor()
        fire(cluster)
        dispatch.plan_journal()
        d = Delivery.objects.get()
        first, second, third = (delivery.attempt(d.pk) for _ in range(3))
        assert (first.status, first.retry_in_s) == ("pending", 10)
        assert (second.status, second.retry_in_s) == ("pending", 20)
        assert third.status == "failed" and third.error.startswith("HTTP 500")
        assert "secret-token" not in third.error  # the URL is a credential
        d.refresh_from_db()
        assert (d.status, d.attempts) == ("failed", 3)
        attempts = Event.objects.filter(kind="notification.attempt").order_by("id")
        assert [(e.payload["attempt"], e.payload["ok"], e.payload["final"]) for e in attempts] == [
            (1, False, False),
            (2, False, False),
            (3, False, True),
        ]
        channel_alert = Alert.objects.get(rule="notify_channel:chat")
        assert channel_alert.state == "firing"

        # The receiver works again: a test message succeeds and resolves the channel alert.
        from console.notifications import services

        test = services.send_test(Channel.objects.get(), actor="admin")
        assert delivery.attempt(test.pk).status == "sent"
        assert hook.bodies[-1]["text"] == "raftops test notification for channel chat"
    channel_alert.refresh_from_db()
    assert channel_alert.state == "resolved"
    assert Channel.objects.get().failures_in_a_row == 0


def test_a_missing_secret_variable_fails_with_a_line_naming_it(cluster: Cluster) -> None:
    Channel.objects.create(name="chat", kind="slack", routes=["warning"], secret_env="NOTIFY_NOPE")
    start_cursor()
    fire(cluster)
    dispatch.plan_journal()
    outcome = delivery.attempt(Delivery.objects.get().pk)
    assert outcome.error == "environment variable NOTIFY_NOPE (webhook URL) is not set"


def test_pagerduty_gets_a_trigger_and_a_resolve_with_one_dedup_key(
    cluster: Cluster, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_PD_KEY", "r0uting")
    Channel.objects.create(
        name="pager",
        kind="pagerduty",
        routes=["critical"],
        secret_env="NOTIFY_PD_KEY",
        url=webhook.url,
    )
    start_cursor()
    alert = fire(cluster, "critical", rule="cluster_size")
    alert.state = "resolved"
    alert.save()
    journal_alert("alert.resolved", alert)
    dispatch.plan_journal()  # both in one batch: the resolution follows the firing
    assert deliver_pending() == ["sent", "sent"]
    trigger, resolve = sorted(webhook.bodies, key=lambda b: b["event_action"] != "trigger")
    assert trigger["routing_key"] == "r0uting" and trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "raftops/prod"
    assert resolve == {
        "routing_key": "r0uting",
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_failed_rolled_back_and_stale_runbook_runs_are_sent_and_successful_ones_are_not(
    cluster: Cluster, chat: Channel, webhook: Webhook
) -> None:
    start_cursor()
    endings = ((1, "succeeded"), (2, "failed"), (3, "stale"), (4, "cancelled"), (5, "rolled_back"))
    for run_id, status in endings:
        journal.append(
            "run.finished", actor="worker", cluster=cluster, run_id=run_id, status=status, error="x"
        )
    dispatch.plan_journal()
    deliver_pending()
    assert sorted(b["text"] for b in webhook.bodies) == [
        "[prod] runbook run #2 failed",
        "[prod] runbook run #3 stale (needs an operator)",
        "[prod] runbook run #5 rolled_back",
    ]


def test_a_run_that_needs_an_operator_pages(
    cluster: Cluster, chat: Channel, webhook: Webhook
) -> None:
    Channel.objects.create(
        name="pager", kind="slack", routes=["critical"], secret_env="NOTIFY_CHAT_URL"
    )
    start_cursor()
    journal.append(
        "run.finished",
        actor="worker",
        cluster=cluster,
        run_id=9,
        status="needs_operator",
        error="x",
    )
    dispatch.plan_journal()
    assert [(d.channel.name, d.severity) for d in Delivery.objects.all()] == [("pager", "critical")]


def test_the_scheduled_reports_are_e_mailed_once_per_period(
    cluster: Cluster, mailbox: Mailbox, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.NOTIFY_REPORTS_HOUR = 7
    monkeypatch.setenv("NOTIFY_SMTP_PASSWORD", "")
    Channel.objects.create(
        name="ops-mail",
        kind="email",
        routes=["report"],
        recipients="ops@example.test, sre@example.test",
    )
    monday_8am = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    dispatch.plan_reports(monday_8am)
    dispatch.plan_reports(monday_8am + dt.timedelta(hours=1))  # same periods: nothing new
    assert sorted(Delivery.objects.values_list("key", flat=True)) == [
        "report:daily:prod:2026-03-02",
        "report:monthly:prod:2026-02",
        "report:weekly:prod:2026-03-02",
    ]
    assert deliver_pending() == ["sent"] * 3
    subjects = sorted(m["Subject"] for m in mailbox.messages)
    assert subjects == [
        "[prod] daily report 2026-03-02",
        "[prod] monthly report 2026-02",
        "[prod] weekly report 2026-03-02",
    ]
    monthly: Message = next(m for m in mailbox.messages if "monthly" in m["Subject"])
    assert monthly["To"] == "ops@example.test, sre@example.test"
    assert "availability" in monthly.get_payload() and "0 failovers" in monthly.get_payload()


def test_before_the_reports_hour_the_latest_due_reports_are_yesterdays(settings) -> None:
    settings.NOTIFY_REPORTS_HOUR = 7
    due = dispatch.due_reports(dt.datetime(2026, 3, 2, 6, 59, tzinfo=dt.UTC))  # a Monday
    assert due == [("daily", "2026-03-01"), ("weekly", "2026-02-23"), ("monthly", "2026-02")]
    due = dispatch.due_reports(dt.datetime(2026, 3, 1, 6, 59, tzinfo=dt.UTC))
    assert due[2] == ("monthly", "2026-01")  # February's review goes out at 07:00 on the 1st


def test_a_delivery_left_sending_by_a_dead_worker_is_queued_again_after_a_while(
    cluster: Cluster, chat: Channel, webhook: Webhook
) -> None:
    start_cursor()
    fire(cluster)
    dispatch.plan_journal()
    d = Delivery.objects.get()
    now = timezone.now()
    assert dispatch.enqueue_pending(now) == [d.pk]
    assert dispatch.enqueue_pending(now) == []  # queued once
    Delivery.objects.filter(pk=d.pk).update(status="sending", enqueued_at=now)  # worker died
    assert dispatch.enqueue_pending(now + dt.timedelta(minutes=5)) == []
    assert dispatch.enqueue_pending(now + dt.timedelta(minutes=16)) == [d.pk]
    assert delivery.attempt(d.pk).status == "sent"
    assert len(webhook.bodies) == 1


def test_old_sent_and_failed_deliveries_are_pruned_but_a_firing_alerts_are_kept(
    cluster: Cluster,
) -> None:
    channel = Channel.objects.create(
        name="ops", kind="slack", routes=["warning"], secret_env="NOTIFY_CHAT_URL"
    )
    firing = fire(cluster)
    now = timezone.now()
    long_ago, lately = now - dt.timedelta(days=31), now - dt.timedelta(days=1)

    def made(key: str, status: str, enqueued_at: dt.datetime, alert_id: int | None = None) -> int:
        row = Delivery.objects.create(
            channel=channel, key=key, severity="warning", status=status, alert_id=alert_id
        )
        Delivery.objects.filter(pk=row.pk).update(enqueued_at=enqueued_at)
        return row.pk

    old_sent = made("event:101", "sent", long_ago)
    old_failed = made("event:102", "failed", long_ago)
    old_pending = made("event:103", "pending", long_ago)
    recent = made("event:104", "sent", lately)
    firing_first = made("event:900", "sent", long_ago, alert_id=firing.pk)

    assert dispatch.prune(now) == 2

    kept = set(Delivery.objects.values_list("pk", flat=True))
    assert {old_sent, old_failed}.isdisjoint(kept)
    assert {old_pending, recent, firing_first} <= kept
