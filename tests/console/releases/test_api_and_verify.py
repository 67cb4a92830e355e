"""The releases API and the verification a worker runs (a real scratch node)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from console.clusters.models import Cluster, Node, Release
from console.events.models import Event
from console.releases import services, verify
from daemon.localcluster import releases as store
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def releases_dir(settings, tmp_path: Path) -> Path:
    settings.RELEASES_DIR = tmp_path / "releases"
    return settings.RELEASES_DIR


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return store.build_wheel(ROOT, tmp_path_factory.mktemp("w"), release="api-1").path.read_bytes()


def logged_in(role: str) -> Client:
    user = get_user_model().objects.create_user(f"u-{role}", password="correct horse battery")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


def register(data: bytes) -> Release:
    return services.register_upload([data], "raftops.whl", None)


def test_the_list_names_the_nodes_running_each_release(built_wheel: bytes) -> None:
    release = register(built_wheel)
    cluster = Cluster.objects.create(name="c1")
    Node.objects.create(cluster=cluster, name="n0", http_url="http://127.0.0.1:1", release="api-1")

    answer = logged_in("viewer").get("/api/releases")

    assert answer.status_code == 200
    [row] = answer.json()
    assert (row["name"], row["status"], row["nodes"]) == (release.name, "registered", ["c1/n0"])


def test_a_viewer_or_operator_cannot_register_and_a_bad_upload_is_a_400() -> None:
    assert (
        logged_in("operator").post("/api/releases/build", {}, "application/json").status_code == 403
    )
    admin = logged_in("admin")
    bad = admin.post("/api/releases/upload", {"wheel": _file(b"not a zip", "x.whl")})
    assert bad.status_code == 400 and "wheel" in bad.json()["detail"], bad.content
    assert not Release.objects.exists()


def test_retiring_an_unknown_release_is_a_404_and_yanking_is_journaled(built_wheel: bytes) -> None:
    admin = logged_in("admin")
    assert admin.post("/api/releases/nope/retire", {}, "application/json").status_code == 404
    register(built_wheel)
    answer = admin.post("/api/releases/api-1/yank", {"reason": "bad"}, "application/json")
    assert answer.status_code == 200 and answer.json()["status"] == "yanked"
    assert Event.objects.filter(kind="release.yanked", payload__release="api-1").exists()


def test_verification_starts_a_scratch_node_from_the_release_and_records_its_build(
    built_wheel: bytes,
) -> None:
    release = register(built_wheel)

    verified = verify.verify(release.id)

    assert verified.verification["ok"] is True, verified.verification
    assert verified.status == Release.Status.VERIFIED and verified.can_roll_out
    assert verified.verification["build"]["release"] == "api-1"
    assert verified.max_code_version == verified.verification["maxCodeVersion"] >= 0
    assert verified.verification["durationS"] > 0
    assert Event.objects.filter(kind="release.verified", payload__release="api-1").exists()


def test_a_wheel_changed_after_registration_fails_verification_and_stays_unverified(
    built_wheel: bytes,
) -> None:
    release = register(built_wheel)
    path = Path(release.wheel_path)
    path.chmod(0o600)
    path.write_bytes(built_wheel + b"tampered")

    failed = verify.verify(release.id)

    assert failed.verification["ok"] is False
    assert "changed after registration" in failed.verification["error"]
    assert failed.status == Release.Status.REGISTERED and not failed.can_roll_out
    assert Event.objects.filter(kind="release.verification_failed").exists()


def _file(data: bytes, name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_the_releases_page_lists_each_release_with_its_nodes_and_admin_forms(
    built_wheel: bytes,
) -> None:
    register(built_wheel)
    cluster = Cluster.objects.create(name="c1")
    Node.objects.create(cluster=cluster, name="n0", http_url="http://127.0.0.1:1", release="api-1")

    admin_page = logged_in("admin").get("/releases/").content.decode()
    viewer_page = logged_in("viewer").get("/releases/").content.decode()

    assert 'data-testid="release-api-1"' in admin_page and "c1/n0" in admin_page
    assert 'data-testid="register-release"' in admin_page and "verify-api-1" in admin_page
    assert 'data-testid="register-release"' not in viewer_page and "verify-api-1" not in viewer_page


def test_a_viewer_posting_a_yank_gets_403_and_a_bad_change_is_a_404(built_wheel: bytes) -> None:
    register(built_wheel)
    assert logged_in("viewer").post("/releases/api-1/yank/").status_code == 403
    assert logged_in("admin").post("/releases/api-1/explode/").status_code == 404
    assert Release.objects.get(name="api-1").status == "registered"


def test_retiring_from_the_page_changes_the_status_and_says_so(built_wheel: bytes) -> None:
    register(built_wheel)
    answer = logged_in("admin").post("/releases/api-1/retire/", follow=True)
    assert "release api-1 is now retired" in answer.content.decode()
    assert Release.objects.get(name="api-1").status == "retired"


@pytest.mark.django_db(transaction=True)
def test_verify_through_the_api_is_done_by_a_real_worker(
    built_wheel: bytes, shared_releases_dir: Path, start_worker
) -> None:
    start_worker()
    register(built_wheel)

    answer = logged_in("operator").post("/api/releases/api-1/verify")

    assert answer.status_code == 202, answer.content
    release = Release.objects.get(name="api-1")
    wait_for(
        lambda: Release.objects.get(name="api-1").verification.get("ok") is not None,
        120,
        "the worker to verify the release",
    )
    release.refresh_from_db()
    assert release.verification["ok"] is True, release.verification
    assert release.status == "verified"
    assert Event.objects.filter(kind="release.verify_requested", actor="u-operator").exists()
