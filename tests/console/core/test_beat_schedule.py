"""Celery beat runs every periodic job the apps declare (one schedule, in settings)."""

from console.celery import app


def test_beat_schedules_backups_and_notifications() -> None:
    schedule = app.conf.beat_schedule
    assert schedule["backups-tick"]["task"] == "backups.tick"
    assert schedule["notifications-dispatch"]["task"] == "notifications.dispatch"
