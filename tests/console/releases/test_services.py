"""Registering releases from uploads and builds; retiring and yanking them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from console.clusters.models import Cluster, Node, Release
from console.events.models import Event
from console.releases import services
from daemon.localcluster import releases as store

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def releases_dir(settings, tmp_path: Path) -> Path:
    settings.RELEASES_DIR = tmp_path / "releases"
    return settings.RELEASES_DIR


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return store.build_wheel(ROOT, tmp_path_factory.mktemp("w"), release="up-1").path.read_bytes()


def _chunks(data: bytes, size: int = 65536):
    return (data[i : i + size] for i in range(0, len(data), size))


def test_an_uploaded_wheel_is_registered_with_its_hash_and_journaled(built_wheel: bytes) -> None:
    admin = get_user_model().objects.create_user("ada")
    release = services.register_upload(_chunks(built_wheel), "raftops.whl", admin)
    assert release.name == "up-1"
    assert release.status == Release.Status.REGISTERED
    assert release.source == Release.Source.UPLOAD
    assert Path(release.wheel_path).read_bytes() == built_wheel
    assert Path(release.wheel_path).name == f"{release.sha256}.whl"
    event = Event.objects.get(kind="release.registered")
    assert event.actor == "ada" and event.payload["release"] == "up-1"


def test_the_same_release_name_twice_is_refused(built_wheel: bytes) -> None:
    services.register_upload(_chunks(built_wheel), "a.whl", None)
    with pytest.raises(services.ReleaseError, match="already exists"):
        services.register_upload(_chunks(built_wheel), "b.whl", None)
    assert Release.objects.count() == 1


def test_an_oversized_upload_is_refused_before_it_is_all_written(monkeypatch, releases_dir) -> None:
    monkeypatch.setattr(store, "MAX_WHEEL_BYTES", 1000)
    seen = []

    def endless():
        while True:
            seen.append(1)
            yield b"x" * 100

    with pytest.raises(services.ReleaseError, match="larger than 1000 bytes"):
        services.register_upload(endless(), "big.whl", None)
    assert len(seen) == 11
    assert not Release.objects.exists()


def test_a_foreign_wheel_upload_is_refused_with_the_reason() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("requests-2.0.dist-info/METADATA", "Name: requests\nVersion: 2.0\n")
    with pytest.raises(services.ReleaseError, match="not of this project"):
        services.register_upload([buffer.getvalue()], "requests-2.0-py3-none-any.whl", None)
    assert not Release.objects.exists()


def test_a_release_that_nodes_run_cannot_be_retired_but_can_be_yanked(built_wheel: bytes) -> None:
    release = services.register_upload(_chunks(built_wheel), "a.whl", None)
    cluster = Cluster.objects.create(name="c1")
    Node.objects.create(cluster=cluster, name="n0", http_url="http://127.0.0.1:1", release="up-1")
    with pytest.raises(services.ReleaseError, match="running on c1/n0"):
        services.change_status(release, "retired", None)
    services.change_status(release, "yanked", None, reason="corrupts data")
    release.refresh_from_db()
    assert release.status == Release.Status.YANKED
    assert Event.objects.get(kind="release.yanked").payload["reason"] == "corrupts data"
    with pytest.raises(services.ReleaseError, match="cannot become retired"):
        services.change_status(release, "retired", None)
