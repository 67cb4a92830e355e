"""Notifications: alerts, runbook outcomes and the scheduled reports, sent to the
channels an admin configured (Slack-compatible webhook, PagerDuty Events v2, e-mail).

The journal is the source: `dispatch.py` reads events after a stored cursor and plans
one Delivery per (message, channel); `delivery.py` sends one, from a Celery task with
retries and back-off (`tasks.py`), journaling each attempt. Nothing in alerts or
runbooks calls in here, so the collector never waits on a webhook.
"""
