"""Celery transport for runbook runs: one task per run; the RunbookRun row is the record.

Delivery choice: `acks_late=True` with `reject_on_worker_lost=True`. A message is
acknowledged only when the task returns, so a worker that dies between taking the
message and claiming the run does not lose it: the broker hands it to another worker.
Redelivery is safe because the run is claimed with a conditional UPDATE (queued ->
running): a message for a run that already started, finished or went stale is a no-op.
A run whose worker died mid-step is not retried automatically (what the step did on the
cluster is unknown); the reaper marks it stale once its heartbeat stops, and the
operator decides: resume it (finished steps are not repeated) or request it again.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from console.runbooks import records, runner

log = logging.getLogger("console.runbooks")


@shared_task(name="runbooks.run_runbook", acks_late=True, reject_on_worker_lost=True)
def run_runbook(run_id: int) -> str | None:
    return runner.execute(run_id)


@worker_ready.connect
def _reap_at_worker_start(**kwargs: object) -> None:
    # A worker that starts after a crash ends the runs its predecessor left behind.
    try:
        reaped = records.reap_stale_runs()
    except Exception:  # the database may not be reachable yet; the next caller reaps
        log.warning("could not reap stale runs at worker start", exc_info=True)
        return
    if reaped:
        log.warning("marked stale at worker start: runs %s", reaped)
