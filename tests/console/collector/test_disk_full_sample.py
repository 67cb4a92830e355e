"""A node refusing writes for a full disk counts as a full disk for the alert,
whatever its filesystem's fill says (its reserve is what ran out)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from console.clusters.models import Cluster
from console.collector.observe import NodePoll, Observation, Target
from console.collector.samples import build_sample
from daemon.contract import DiskUsage, NodeHealth

pytestmark = pytest.mark.django_db


def poll(name: str, disk: DiskUsage) -> NodePoll:
    view = NodeHealth(
        name=name, role="follower", term=1, commit_index=1, applied_index=1,
        last_log_index=1, digest="d", draining=False, version="1", leader="n0",
        has_quorum=True, ready=True, disk=disk,
    )  # fmt: skip
    return NodePoll(Target(f"http://127.0.0.1/{name}", name), view=view)


def test_a_node_under_its_disk_reserve_makes_the_sample_a_full_disk() -> None:
    cluster = Cluster.objects.create(name="df", seed_urls=["http://127.0.0.1:1"])
    obs = Observation(
        at=timezone.now(),
        polls=[
            poll("n0", DiskUsage(data_dir_bytes=1, fs_usage=0.30)),
            poll("n1", DiskUsage(data_dir_bytes=1, fs_usage=0.85, full=True)),
        ],
        summary=None,
    )
    assert build_sample(cluster, obs, None).max_disk_usage == 1.0


def test_without_a_full_node_the_sample_is_the_fullest_filesystem() -> None:
    cluster = Cluster.objects.create(name="df2", seed_urls=["http://127.0.0.1:1"])
    obs = Observation(
        at=timezone.now(),
        polls=[poll("n0", DiskUsage(data_dir_bytes=1, fs_usage=0.30))],
        summary=None,
    )
    assert build_sample(cluster, obs, None).max_disk_usage == 0.30
