"""`manage.py first_release` (what `make run` calls): a fresh install registers and
verifies the checkout and its local nodes start from it; a second call changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from console.clusters.models import Release
from daemon.localcluster import Layout

pytestmark = pytest.mark.django_db


def test_a_fresh_install_registers_verifies_and_points_the_nodes_at_the_checkout(
    settings, tmp_path: Path
) -> None:
    settings.RELEASES_DIR = tmp_path / "releases"
    layout = Layout.on_free_ports(tmp_path / "cluster", 3)
    layout.save()
    layout.write_secrets(tokens={"admin": "t" * 24})
    layout.write_configs()

    call_command("first_release", cluster_dir=layout.root)

    release = Release.objects.get()
    assert release.status == "verified" and release.source == "working-tree"
    assert release.verification["build"]["release"] == release.name
    saved = Layout.load(layout.root)
    assert {saved.release_of(spec.name).release for spec in saved.nodes} == {release.name}

    call_command("first_release", cluster_dir=layout.root)
    assert Release.objects.count() == 1
