"""Two evaluators at once (two collectors, or a collector and a manual run) open one alert.

Both are made to pass the "is an alert open?" read before either inserts, so the
database's partial unique constraint is what decides. Real threads, real connections:
PostgreSQL when DATABASE_URL names it, else the SQLite test file.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from console.alerts import evaluate
from console.alerts.models import Alert
from console.events.models import Event
from tests.console.alerts.support import T0, make_cluster, set_lag

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_evaluations_at_once_create_one_alert_and_one_event(monkeypatch) -> None:
    cluster = make_cluster()
    set_lag(cluster, 50.0)
    both_saw_nothing_open = threading.Barrier(2, timeout=10)
    open_alert = evaluate._open

    def open_after_both_looked(*args: object, **kwargs: object) -> Alert | None:
        both_saw_nothing_open.wait()
        return open_alert(*args, **kwargs)

    monkeypatch.setattr(evaluate, "_open", open_after_both_looked)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            evaluate.evaluate_cluster(cluster, T0)
        except BaseException as error:  # reported by the main thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert list(Alert.objects.values_list("rule", "state")) == [("replication_lag", "pending")]
    assert Event.objects.filter(kind="alert.pending").count() == 1


def test_two_evaluations_at_once_fire_an_alert_once(monkeypatch) -> None:
    cluster = make_cluster()
    set_lag(cluster, 50.0)
    evaluate.evaluate_cluster(cluster, T0)
    both_due = threading.Barrier(2, timeout=10)
    fire = evaluate._fire

    def fire_after_both_decided(*args: object, **kwargs: object) -> None:
        both_due.wait()
        fire(*args, **kwargs)

    monkeypatch.setattr(evaluate, "_fire", fire_after_both_decided)
    threads = [
        threading.Thread(
            target=lambda: (
                evaluate.evaluate_cluster(cluster, T0.replace(minute=5)),
                connection.close(),
            )
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert Alert.objects.get().state == "firing"
    assert Event.objects.filter(kind="alert.firing").count() == 1
