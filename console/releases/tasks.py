"""Celery tasks for releases: verification runs on the worker, never in a request."""

from __future__ import annotations

from celery import shared_task

from console.releases import verify


@shared_task(name="releases.verify_release")
def verify_release(release_id: int, actor: str = "worker") -> str:
    release = verify.verify(release_id, actor)
    return "verified" if release.verification.get("ok") else "failed"
