"""Helpers for the upgrade fault tests: releases built from this tree with a patch, a
watch on the cluster's quorum, and the moments a test waits for (a node soaking)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from console.runbooks.models import RunbookRun, RunbookStep
from daemon.localcluster import releases as store
from tests import cluster_harness
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[3]
# Every execution of a noop operation (the steady writer's) fails on this release.
NOOP = "async def _run_noop(handler: dict, policy: HandlerPolicy, params: dict) -> object:\n"
ALL_FAIL = (
    "daemon/handlers/run.py",
    NOOP + "    return None\n",
    NOOP + '    raise HandlerFailure("every execution fails on this release (a test build)")\n',
)
_built: dict[str, store.Wheel] = {}


def patched_wheel(tmp: Path, release: str, path: str, old: str, new: str) -> store.Wheel:
    """A wheel of this tree with `old` replaced by `new` in `path` (which must hold it)."""
    repo = tmp / "repo"
    repo.mkdir()
    store._export_tree(ROOT, None, repo)
    target = repo / path
    text = target.read_text()
    assert old in text, f"the patch no longer applies to {path}"
    target.write_text(text.replace(old, new, 1))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", release], check=True)
    return store.build_wheel(repo, tmp / "wheels", release=release)


def wheel(factory: pytest.TempPathFactory, release: str) -> store.Wheel:
    """`up-2` (this tree) or `allfail-2` (ALL_FAIL applied), built once per session."""
    if release not in _built:
        tmp = factory.mktemp(release)
        if release == "up-2":
            _built[release] = store.build_wheel(ROOT, tmp, release=release)
        else:
            _built[release] = patched_wheel(tmp, release, *ALL_FAIL)
    return _built[release]


class QuorumWatch:
    """Asks every node for its cluster view every 0.2 s; a moment when none of those that
    answer sees a leader with quorum is recorded (a restarting node alone never counts)."""

    def __init__(self, cluster: cluster_harness.Cluster) -> None:
        self.cluster = cluster
        self.checks = 0
        self.lost: list[int] = []  # the check numbers without quorum
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        with httpx.Client(timeout=1.0) as http:
            while not self._stop.wait(0.2):
                seen = False
                for node in self.cluster.nodes:
                    try:
                        view = http.get(f"{node.url}/health/cluster").json()
                    except (httpx.HTTPError, ValueError):
                        continue
                    if view.get("hasQuorum") and view.get("leader"):
                        seen = True
                        break
                self.checks += 1
                if not seen:
                    self.lost.append(self.checks)

    def stop(self) -> QuorumWatch:
        self._stop.set()
        self._thread.join(timeout=10)
        return self


def soak_step(run: RunbookRun, node: str) -> RunbookStep:
    return run.steps.get(name__startswith=f"soak {node} ")


def wait_soaking(run: RunbookRun, node: str, timeout_s: float = 180) -> RunbookStep:
    """Until `node`'s soak gates are being held (its first gate values are recorded)."""

    def soaking() -> RunbookStep | None:
        step = soak_step(run, node)
        run.refresh_from_db()
        assert run.status in ("queued", "running"), (run.status, run.error)
        return step if step.gates and step.status == "pending" else None

    try:
        return wait_for(soaking, timeout_s, f"{node} to soak", interval=0.1)
    except AssertionError as err:  # say where the run was, not only that it was late
        where = [(s.position, s.name, s.status) for s in run.steps.exclude(status="pending")]
        raise AssertionError(f"{err}; run #{run.id} {run.status}, steps {where}") from None


def gate(step: RunbookStep, starts: str) -> dict:
    """The step's recorded gate whose name starts with `starts`."""
    found = [g for g in step.gates if g["name"].startswith(starts)]
    assert found, [g["name"] for g in step.gates]
    return found[0]


def step_times(run: RunbookRun) -> str:
    """Each step's seconds since the previous step ended (its gates and its work), to
    show where a run's time goes."""
    rows = []
    previous = run.started_at
    for step in run.steps.order_by("position"):
        if step.finished_at is None:
            continue
        held = max((g.get("heldS") or 0.0 for g in step.gates or []), default=0.0)
        taken = (step.finished_at - previous).total_seconds() if previous else 0.0
        rows.append(f"{step.position}:{taken:.1f}s" + (f"(soak {held:g})" if held else ""))
        previous = step.finished_at
    return " ".join(rows)
