"""Celery tasks: deliver one message (retried with exponential back-off), and the
planning pass (Celery beat runs it every few seconds; the collector's tick runs it too,
so notifications flow where no beat runs)."""

from __future__ import annotations

from celery import shared_task

from console.notifications import delivery, dispatch


@shared_task(name=dispatch.DELIVER_TASK, bind=True, max_retries=None, acks_late=True)
def deliver(self, delivery_id: int) -> str:
    outcome = delivery.attempt(delivery_id)
    if outcome.status == "pending" and outcome.retry_in_s is not None:
        # The row counts the attempts and decides when to give up, not Celery.
        raise self.retry(countdown=outcome.retry_in_s)
    return outcome.status


@shared_task(name="notifications.dispatch", ignore_result=True)
def dispatch_notifications() -> None:
    dispatch.dispatch()
