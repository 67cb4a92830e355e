"""Registering, verifying, retiring and yanking releases: the rules, not the pages.

A release is registered from a build of this checkout (the working tree or a git ref) or
from an uploaded wheel; either way the wheel lands under `RELEASES_DIR/wheels/` named by
its hash and is checked before a row exists. Only a verified release can be rolled out:
verification installs it, starts a scratch node from it and checks the build it reports
(`console/releases/verify.py`, run by the worker).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from console.clusters.models import Node, Release
from console.events import journal
from daemon.localcluster import releases as store

ReleaseError = store.ReleaseError
Status = Release.Status


def wheels_dir() -> Path:
    return Path(settings.RELEASES_DIR) / "wheels"


def envs_dir() -> Path:
    return Path(settings.RELEASES_DIR) / "envs"


def _keep(wheel: store.Wheel) -> store.Wheel:
    """Move a checked wheel into the store under its hash (a name no upload can choose)."""
    target = wheels_dir() / f"{wheel.sha256}.whl"
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not target.exists():
        shutil.move(wheel.path, target)
        target.chmod(0o400)
    return store.Wheel(**{**wheel.__dict__, "path": target})


def _register(wheel: store.Wheel, source: str, source_ref: str, user: Any) -> Release:
    if Release.objects.filter(name=wheel.release).exists():
        raise ReleaseError(f"release {wheel.release} already exists; give the new one another name")
    kept = _keep(wheel)
    try:
        with transaction.atomic():
            release = Release.objects.create(
                name=kept.release,
                package_version=kept.version,
                sha256=kept.sha256,
                size_bytes=kept.size,
                wheel_path=str(kept.path),
                source=source,
                source_ref=source_ref[:200],
                commit=kept.commit if kept.commit != "unknown" else "",
                dirty=kept.dirty,
                added_by=user if getattr(user, "is_authenticated", False) else None,
            )
            journal.append(
                "release.registered",
                actor=_actor(user),
                release=release.name,
                source=source,
                sha256=release.sha256,
                commit=release.commit,
            )
    except IntegrityError as exc:  # a concurrent registration of the same name won
        raise ReleaseError(f"release {wheel.release} already exists") from exc
    return release


def _actor(user: Any) -> str:
    return (
        user.get_username() if getattr(user, "is_authenticated", False) else str(user or "system")
    )


def build_from_checkout(
    repo: Path, user: Any, name: str | None = None, ref: str | None = None
) -> Release:
    """Build a wheel of `repo` (the working tree, or `ref`) and register it."""
    if name:
        store.check_name(name)
        if Release.objects.filter(name=name).exists():
            raise ReleaseError(f"release {name} already exists; give the new one another name")
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        wheel = store.build_wheel(repo, Path(tmp), release=name, ref=ref)
        source = Release.Source.GIT_REF if ref else Release.Source.WORKING_TREE
        return _register(wheel, source, ref or str(repo), user)


def register_upload(chunks: Any, filename: str, user: Any) -> Release:
    """Check an uploaded wheel (`chunks`: an iterable of bytes) and register it.

    The size limit is enforced while reading, so an oversized upload never fills the disk."""
    safe_name = Path(filename or "upload.whl").name
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        path = Path(tmp, safe_name)
        written = 0
        with path.open("wb") as fh:
            for chunk in chunks:
                written += len(chunk)
                if written > store.MAX_WHEEL_BYTES:
                    raise ReleaseError(
                        f"the upload is larger than {store.MAX_WHEEL_BYTES} bytes, the limit for a release wheel"
                    )
                fh.write(chunk)
        return _register(store.read_wheel(path), Release.Source.UPLOAD, safe_name, user)


def nodes_by_release() -> dict[str, list[str]]:
    """{release name: ["cluster/node", ...]} for every node that reports a release."""
    running: dict[str, list[str]] = {}
    for node in Node.objects.filter(removed=False).exclude(release="").select_related("cluster"):
        running.setdefault(node.release, []).append(f"{node.cluster.name}/{node.name}")
    return running


_ALLOWED = {
    # to: the statuses it may be reached from
    Status.RETIRED: {Status.REGISTERED, Status.VERIFIED},
    Status.YANKED: {Status.REGISTERED, Status.VERIFIED, Status.ACTIVE, Status.RETIRED},
}


def change_status(release: Release, to: str, user: Any, reason: str = "") -> Release:
    """Retire or yank a release. Retiring one that nodes run is refused (yank it instead:
    yanking says it must not run, and upgrades and restarts then refuse it)."""
    to = Status(to)
    if release.status not in _ALLOWED[to]:
        raise ReleaseError(f"release {release.name} is {release.status}; it cannot become {to}")
    running = nodes_by_release().get(release.name, [])
    if to == Status.RETIRED and running:
        raise ReleaseError(
            f"release {release.name} is running on {', '.join(running)}; roll those nodes to "
            "another release first, or yank it if it must not run"
        )
    with transaction.atomic():
        release.status = to
        release.save(update_fields=["status"])
        journal.append(
            f"release.{to}", actor=_actor(user), release=release.name, reason=reason[:500]
        )
    return release
