"""Verify a release: install it, import it, start a scratch node from it, check its build.

Run by the worker (`tasks.verify_release`). The scratch node is a one-node cluster on
free loopback ports in a temporary directory, started from the release's own
environment exactly as the node manager starts a node on a release (its python,
`DAEMON_RELEASE`, no `PYTHONPATH`), so what is verified is what will run. The result,
success or not, is recorded on the release and journaled: duration, the build the
node reported, its maxCodeVersion, or the node's last log lines when it failed.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from django.db import transaction
from django.utils import timezone

from console.clusters.models import Release
from console.events import journal
from console.releases.services import envs_dir
from daemon.localcluster import Layout, NodeProcess
from daemon.localcluster import releases as store

START_TIMEOUT_S = 60.0
LOG_LINES = 20


class VerificationFailed(Exception):
    def __init__(self, message: str, log_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail or []


def _wheel_of(release: Release) -> store.Wheel:
    path = Path(release.wheel_path)
    if not path.exists():
        raise VerificationFailed(f"the release's wheel is missing: {path}")
    wheel = store.read_wheel(path)
    if wheel.sha256 != release.sha256:
        raise VerificationFailed(
            f"the wheel's SHA-256 {wheel.sha256[:12]}… differs from the recorded "
            f"{release.sha256[:12]}…: it was changed after registration"
        )
    return wheel


def _named(wheel: store.Wheel, tmp: Path) -> store.Wheel:
    """The stored wheel (named by its hash) under a name pip accepts, for installing."""
    version = wheel.version.replace("-", "_")
    link = tmp / f"{store.DISTRIBUTION}-{version}-py3-none-any.whl"
    shutil.copyfile(wheel.path, link)  # a copy: the installer resolves symlinks
    return store.Wheel(**{**wheel.__dict__, "path": link})


def _scratch_node(release: Release, work: Path) -> dict[str, Any]:
    """Start one node from the release's environment; its /health/node answer."""
    admin_token = secrets.token_urlsafe(24)
    layout = Layout.on_free_ports(work / "cluster", 1)
    layout.save()
    layout.write_secrets(tokens={"admin": admin_token})
    layout.write_configs()
    python = str(store.python_of(envs_dir(), release.name))
    node = NodeProcess(
        layout,
        layout.nodes[0].name,
        python=python,
        env={"DAEMON_RELEASE": release.name, "PYTHONPATH": ""},
    )
    node.start()
    try:
        if not node.wait_ready(START_TIMEOUT_S):
            raise VerificationFailed(
                f"the scratch node did not become ready within {START_TIMEOUT_S:.0f}s",
                node.status(LOG_LINES).log_tail,
            )
        return httpx.get(node.url + "/health/node", timeout=5).json()
    except httpx.HTTPError as exc:
        raise VerificationFailed(f"the scratch node did not answer: {exc}") from None
    finally:
        node.stop()


def _check_build(release: Release, health: dict[str, Any]) -> dict[str, Any]:
    build = health.get("build")
    if not isinstance(build, dict):
        raise VerificationFailed("the node does not report its build on /health/node")
    if build.get("release") != release.name:
        raise VerificationFailed(
            f"the node reports release {str(build.get('release'))[:63]!r}, not {release.name}"
        )
    if release.commit and build.get("commit") not in (release.commit, None):
        raise VerificationFailed(
            f"the node reports commit {str(build.get('commit'))[:40]}, the wheel "
            f"was built from {release.commit}"
        )
    max_code = health.get("maxCodeVersion", build.get("maxCodeVersion"))
    if not isinstance(max_code, int):
        raise VerificationFailed("the node does not report its maxCodeVersion")
    return {"build": build, "maxCodeVersion": max_code}


def verify(release_id: int, actor: str = "worker") -> Release:
    """Install, import, start and check; record and journal the outcome either way."""
    release = Release.objects.get(id=release_id)
    started = time.monotonic()
    result: dict[str, Any]
    ok = False
    try:
        if release.status == Release.Status.YANKED:
            raise VerificationFailed(f"release {release.name} is yanked")
        with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
            store.install(_named(_wheel_of(release), Path(tmp)), envs_dir())
            inspected = store.inspect(envs_dir(), release.name)
            health = _scratch_node(release, Path(tmp))
        result = {"inspected": inspected, **_check_build(release, health)}
        ok = True
    except VerificationFailed as exc:
        result = {"error": str(exc), "logTail": exc.log_tail}
    except store.ReleaseError as exc:
        result = {"error": str(exc), "logTail": []}
    result["durationS"] = round(time.monotonic() - started, 2)
    result["ok"] = ok
    return _record(release, result, actor)


def _record(release: Release, result: dict[str, Any], actor: str) -> Release:
    with transaction.atomic():
        release = Release.objects.select_for_update().get(id=release.id)
        release.verification = result
        fields = ["verification"]
        if result["ok"]:
            release.max_code_version = result["maxCodeVersion"]
            release.verified_at = timezone.now()
            fields += ["max_code_version", "verified_at"]
            if release.status == Release.Status.REGISTERED:
                release.status = Release.Status.VERIFIED
                fields.append("status")
        release.save(update_fields=fields)
        journal.append(
            "release.verified" if result["ok"] else "release.verification_failed",
            actor=actor,
            release=release.name,
            duration_s=result["durationS"],
            max_code_version=result.get("maxCodeVersion"),
            error=result.get("error", ""),
        )
    return release
