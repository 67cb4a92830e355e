"""Release wheels of this checkout: built, checked, installed read-only, inspected."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from daemon import build
from daemon.localcluster import releases
from daemon.state import ReplicatedState

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> releases.Wheel:
    return releases.build_wheel(ROOT, tmp_path_factory.mktemp("wheels"), release="t-1")


def test_a_built_wheel_carries_the_release_name_and_commit(wheel: releases.Wheel) -> None:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert wheel.release == "t-1"
    assert wheel.commit == head
    assert wheel.version.endswith("+t.1")
    assert releases.sha256_of(wheel.path) == wheel.sha256


def test_an_installed_release_reports_its_own_build(wheel: releases.Wheel, tmp_path: Path) -> None:
    env = releases.install(wheel, tmp_path)
    reported = releases.inspect(tmp_path, "t-1")
    assert reported["release"] == "t-1"
    assert reported["package"] == wheel.version
    assert reported["commit"] == wheel.commit
    assert reported["maxCodeVersion"] == build.max_code_version(ReplicatedState)
    # The code it runs is the wheel's copy, not this checkout.
    where = subprocess.run(
        [str(env / "bin" / "python"), "-P", "-c", "import daemon; print(daemon.__file__)"],
        capture_output=True, text=True, check=True, cwd=env,
    ).stdout.strip()  # fmt: skip
    assert where.startswith(str(env))


def test_an_installed_release_is_read_only_and_installing_again_is_a_no_op(
    wheel: releases.Wheel, tmp_path: Path
) -> None:
    env = releases.install(wheel, tmp_path)
    init = next(env.rglob("daemon/__init__.py"))
    assert not os.access(init, os.W_OK) or os.geteuid() == 0
    assert init.stat().st_mode & 0o222 == 0
    assert releases.install(wheel, tmp_path) == env
    releases.uninstall(tmp_path, "t-1")
    assert not env.exists()


def test_the_same_release_name_from_another_wheel_is_refused(
    wheel: releases.Wheel, tmp_path: Path
) -> None:
    releases.install(wheel, tmp_path)
    other = tmp_path / "other" / wheel.path.name
    other.parent.mkdir()
    other.write_bytes(wheel.path.read_bytes() + b"\0")  # zip readers ignore trailing bytes
    with pytest.raises(releases.ReleaseError, match="already installed from another wheel"):
        releases.install(releases.read_wheel(other), tmp_path)


def test_a_failed_install_leaves_nothing_under_the_release_name(
    wheel: releases.Wheel, tmp_path: Path
) -> None:
    broken = releases.Wheel(**{**wheel.__dict__, "sha256": "0" * 64})
    with pytest.raises(releases.ReleaseError, match="installing the wheel failed"):
        releases.install(broken, tmp_path)
    assert not releases.env_dir(tmp_path, "t-1").exists()
    assert list(tmp_path.iterdir()) == []


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return path


@pytest.mark.parametrize(
    ("name", "files", "reason"),
    [
        ("x.whl", None, "not a readable wheel"),
        ("x.tar.gz", {}, "must end in .whl"),
        ("x.whl", {"a.txt": "hi"}, "no single .dist-info/METADATA"),
        ("x.whl", {"evil-1.0.dist-info/METADATA": "Name: evil\nVersion: 1.0\n"}, "not of this project"),
        ("x.whl", {"raftops-1.dist-info/METADATA": "Name: raftops\nVersion: 1\n", "daemon/__init__.py": ""}, "no build identity"),
        ("x.whl", {"raftops-1.dist-info/METADATA": "Name: raftops\n", "daemon/__init__.py": "", "daemon/_build.json": json.dumps({"release": "../../etc"})}, "not valid"),
    ],
)  # fmt: skip
def test_a_bad_upload_is_refused_with_the_reason(
    tmp_path: Path, name: str, files: dict[str, str] | None, reason: str
) -> None:
    path = tmp_path / name
    if files is None:
        path.write_bytes(b"this is not a zip file")
    else:
        _zip(path, files)
    with pytest.raises(releases.ReleaseError, match=reason):
        releases.read_wheel(path)


def test_a_ref_from_before_releases_existed_is_refused_with_the_reason(tmp_path: Path) -> None:
    first = subprocess.run(
        ["git", "-C", str(ROOT), "rev-list", "--max-parents=0", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]  # fmt: skip
    with pytest.raises(releases.ReleaseError, match="predates releases"):
        releases.build_wheel(ROOT, tmp_path, release="old", ref=first)


def test_an_unknown_ref_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(releases.ReleaseError, match="git rev-parse failed"):
        releases.build_wheel(ROOT, tmp_path, release="nope", ref="no-such-ref-anywhere")


def test_the_replicated_method_table_only_ever_grows() -> None:
    """pysyncobj numbers replicated methods by sorted (ver, name): renaming or removing one,
    or adding one at a version already released, makes old journals replay the wrong method.
    New methods go at a higher ver=; extend RELEASED when a release ships them."""
    released = [
        (0, "define_operation_v0"),
        (0, "delete_operation_v0"),
        (0, "mark_up_v0"),
        (0, "note_leader_v0"),
        (0, "record_execution_v0"),
        (0, "record_executions_v0"),
        (0, "remove_member_v0"),
        (0, "set_draining_v0"),
        (0, "set_member_v0"),
    ]
    table = build.method_table(ReplicatedState)
    assert table[: len(released)] == released
    assert all(ver > released[-1][0] for ver, _ in table[len(released) :])
