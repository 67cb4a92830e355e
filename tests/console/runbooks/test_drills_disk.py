"""The fill-disk drill against a real node whose data dir is a small tmpfs: the node
refuses writes with 507 while full, stays up, and takes writes again once freed."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.clusters.models import Cluster
from console.runbooks import services
from console.runbooks.nodes import manager_for
from tests import cluster_harness
from tests.console.runbooks.drill_collector import collector  # noqa: F401 (fixture)
from tests.console.runbooks.test_worker import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.cluster]


@pytest.fixture
def small_disk_node(managed: Cluster, daemon_cluster: cluster_harness.Cluster) -> Iterator[str]:
    """A follower whose data dir is moved onto a 64 MiB tmpfs (unmounted afterwards)."""
    if shutil.which("mount") is None:
        pytest.skip("mount is not available")
    nodes = manager_for(managed)
    name = next(n.name for n in daemon_cluster.nodes if n is not daemon_cluster.leader())
    data = Path(daemon_cluster.layout.data_dir(name))
    nodes.stop(name)
    kept = data.with_name(data.name + ".kept")
    data.rename(kept)
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(data)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        data.rmdir()
        kept.rename(data)
        nodes.start(name)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        shutil.copytree(kept, data, dirs_exist_ok=True)
        assert nodes.start(name).ready
        yield name
    finally:
        nodes.stop(name)
        subprocess.run(["umount", "-l", str(data)], check=False)


@pytest.mark.usefixtures("collector")
def test_filling_a_small_disk_makes_the_node_refuse_writes_with_507_and_it_recovers(
    managed: Cluster, celery_worker, small_disk_node: str, operator
) -> None:
    outcome = services.request_run(managed, "drill_fill_disk", {"node": small_disk_node}, operator)
    assert outcome.run is not None and outcome.run.status == "queued", outcome.reasons
    run = outcome.run

    assert finished(run, 240).status == "succeeded", run.error
    steps = {s.position: s.detail for s in run.steps.all()}
    measured = steps[2]
    assert measured["writeStatusWhileFull"] == 507 and measured["upWhileFull"] is True
    assert measured["writer"]["lost"] == 0
    assert steps[3]["verdict"] == "pass", steps[3]
    # The disk alert was raised while the disk was full, and the verdict checked it.
    assert measured["alertRaisedAfterS"] is not None
    assert {c["name"]: c["ok"] for c in steps[3]["checks"]}["alert disk_usage raised"]
    assert manager_for(managed).status(small_disk_node).running
