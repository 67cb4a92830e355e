"""The collector records what each node runs (release, commit, code versions), journals a
node's release change once, marks a verified release active, and the dashboard flags a
cluster running mixed releases, naming the nodes that differ."""

from __future__ import annotations

import dataclasses

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from console.clusters.models import Cluster, Node, Release
from console.collector.collector_config import CollectorConfig
from console.collector.observe import Observation
from console.collector.record import Recorder
from console.events.models import Event
from daemon.contract import BuildInfo
from tests.console.collector.test_record import NAMES, observe

pytestmark = pytest.mark.django_db


def running(releases: dict[str, str], code_version: int = 0) -> Observation:
    """The usual observation, each node reporting the release given for it."""
    obs = observe()
    polls = []
    for poll in obs.polls:
        name = poll.target.name
        build = BuildInfo(release=releases[name], package="0.1.0", commit="c0ffee" * 4, dirty=False)
        view = dataclasses.replace(
            poll.view, build=build, code_version=code_version, max_code_version=1
        )
        polls.append(dataclasses.replace(poll, view=view))
    return dataclasses.replace(obs, polls=polls)


def test_a_release_change_is_journaled_once_and_a_verified_release_becomes_active() -> None:
    cluster = Cluster.objects.create(name="c")
    Release.objects.create(
        name="r-2", package_version="0", sha256="0" * 64, size_bytes=1, wheel_path="/x",
        source="upload", status="verified", max_code_version=1,
    )  # fmt: skip
    recorder = Recorder(CollectorConfig())
    recorder.apply(cluster, running(dict.fromkeys(NAMES, "r-1")))
    mark = Event.objects.order_by("-id").first().id

    moved = {**dict.fromkeys(NAMES, "r-1"), "n2": "r-2"}
    recorder.apply(cluster, running(moved))
    recorder.apply(cluster, running(moved))

    changes = list(Event.objects.filter(id__gt=mark, kind="node.release"))
    assert [(e.payload["node"], e.payload["before"], e.payload["after"]) for e in changes] == [
        ("n2", "r-1", "r-2")
    ]
    assert Release.objects.get(name="r-2").status == "active"
    assert Event.objects.filter(kind="release.active", payload__release="r-2").count() == 1
    n2 = Node.objects.get(name="n2")
    assert (n2.release, n2.code_version, n2.max_code_version) == ("r-2", 0, 1)
    assert n2.build_commit == "c0ffee" * 4


def test_the_dashboard_flags_mixed_releases_and_names_the_nodes_that_differ() -> None:
    cluster = Cluster.objects.create(name="c")
    Recorder(CollectorConfig()).apply(
        cluster, running({**dict.fromkeys(NAMES, "r-1"), "n1": "r-2"})
    )
    user = get_user_model().objects.create_user("v", password="correct horse battery")
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client = Client()
    client.force_login(user)

    page = client.get("/clusters/c/").content.decode()

    assert 'data-testid="mixed-releases"' in page
    assert "most nodes run r-1; n1 (r-2) differ" in page
    assert 'data-testid="node-release-n0">r-1' in page


def test_one_release_everywhere_is_not_flagged() -> None:
    cluster = Cluster.objects.create(name="c")
    Recorder(CollectorConfig()).apply(cluster, running(dict.fromkeys(NAMES, "r-1")))
    user = get_user_model().objects.create_user("v", password="correct horse battery")
    client = Client()
    client.force_login(user)
    assert 'data-testid="mixed-releases"' not in client.get("/clusters/c/").content.decode()
