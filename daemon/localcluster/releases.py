"""Releases on this machine: build a wheel of this project, install it immutably, inspect it.

A release is a wheel of this project (the `raftops` distribution: `daemon/` and
`console/`) with its build identity baked in (`daemon/_build.json`: release name, git
commit, dirty flag). Each release is installed into its own environment,
`<root>/<release>/`, a venv holding only that wheel, installed with `--require-hashes`
from the recorded SHA-256; third-party dependencies come from the running environment
(the lock, `constraints.txt`) through a path file, so installing needs no network.
Switching a node between releases is starting it with another environment's python.
An installed environment is made read-only: nothing edits a release in place.

Build from the working tree (tracked and untracked-but-not-ignored files, so what you
see is what you build) or from any git ref (`git archive`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DISTRIBUTION = "raftops"
RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_WHEEL_BYTES = 50 * 1024 * 1024
_COMPLETE = ".installed"  # written last: an environment without it is debris


class ReleaseError(Exception):
    """A release could not be built, checked or installed; the message says why."""


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str
    size: int
    release: str
    version: str
    commit: str
    dirty: bool


def check_name(release: str) -> str:
    if not RELEASE_NAME.match(release or ""):
        raise ReleaseError(
            f"release name {release[:70]!r} is not valid: letters, digits, '.', '_' or '-', "
            "at most 63 characters, starting with a letter or digit"
        )
    return release


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git(repo: Path, *args: str, binary: bool = False) -> Any:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, timeout=120, check=True
        )
    except subprocess.CalledProcessError as exc:
        raise ReleaseError(f"git {args[0]} failed: {exc.stderr.decode().strip()[:300]}") from exc
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReleaseError(f"git {args[0]} failed: {exc}") from exc
    return done.stdout if binary else done.stdout.decode().strip()


def _export_tree(repo: Path, ref: str | None, dest: Path) -> tuple[str, bool]:
    """Write the sources of `ref` (or the working tree) to `dest`: (commit, dirty)."""
    if ref is None:
        commit = _git(repo, "rev-parse", "HEAD")
        dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=normal"))
        files = _git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        for name in filter(None, files.split("\0")):
            src = repo / name
            if src.is_file():  # a deleted but still tracked file is not part of the tree
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
        return commit, dirty
    commit = _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    archive = dest.parent / "src.tar"
    archive.write_bytes(_git(repo, "archive", "--format=tar", commit, binary=True))
    shutil.unpack_archive(archive, dest)
    archive.unlink()
    return commit, False


def _local_label(release: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]", ".", release).strip(".").lower() or "0"


def build_wheel(
    repo: Path, out_dir: Path, release: str | None = None, ref: str | None = None
) -> Wheel:
    """Build a wheel of the checkout at `repo` (working tree, or `ref`) into `out_dir`."""
    with tempfile.TemporaryDirectory(prefix="release-build-") as tmp:
        src = Path(tmp, "src")
        src.mkdir()
        commit, dirty = _export_tree(repo, ref, src)
        if not (src / "daemon" / "build.py").exists():
            raise ReleaseError(
                f"{ref or 'the working tree'} ({commit[:12]}) predates releases: it has no "
                "daemon/build.py, so its nodes could not report their build"
            )
        release = check_name(release or f"{commit[:12]}{'-dirty' if dirty else ''}")
        pyproject = src / "pyproject.toml"
        text = pyproject.read_text()
        match = re.search(r'^version = "([^"+]+)"', text, re.M)
        if match is None:
            raise ReleaseError("pyproject.toml has no version line")
        version = f"{match.group(1)}+{_local_label(release)}"
        pyproject.write_text(text.replace(match.group(0), f'version = "{version}"', 1))
        baked = {"release": release, "commit": commit, "dirty": dirty, "builtAt": time.time()}
        (src / "daemon" / "_build.json").write_text(json.dumps(baked) + "\n")
        wheels = Path(tmp, "wheels")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--no-build-isolation", "--no-index", "-w", str(wheels), str(src)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise ReleaseError(f"building the wheel failed: {done.stderr.strip()[-600:]}")
        (built,) = wheels.glob("*.whl")
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / built.name
        shutil.move(built, target)
    return read_wheel(target)


def read_wheel(path: Path) -> Wheel:
    """Check that `path` is a wheel of this project and read its build identity.

    Used for uploads too, so every refusal names what is wrong."""
    size = path.stat().st_size
    if size > MAX_WHEEL_BYTES:
        raise ReleaseError(
            f"the file is {size} bytes; a release wheel may be at most {MAX_WHEEL_BYTES}"
        )
    if not path.name.endswith(".whl"):
        raise ReleaseError("not a wheel: the file name must end in .whl")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            metadata = [n for n in names if n.endswith(".dist-info/METADATA")]
            if len(metadata) != 1:
                raise ReleaseError("not a wheel: it has no single .dist-info/METADATA")
            fields = dict(
                line.split(": ", 1)
                for line in zf.read(metadata[0]).decode().splitlines()
                if ": " in line
            )
            if fields.get("Name", "").lower() != DISTRIBUTION:
                raise ReleaseError(
                    f"a wheel of {fields.get('Name', '?')!r}, not of this project ({DISTRIBUTION})"
                )
            if "daemon/_build.json" not in names or "daemon/__init__.py" not in names:
                raise ReleaseError(
                    "this wheel carries no build identity (daemon/_build.json): build releases "
                    "with the console or `daemonctl release build`, not with plain `pip wheel`"
                )
            baked = json.loads(zf.read("daemon/_build.json"))
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, KeyError) as exc:
        raise ReleaseError(f"not a readable wheel: {exc}") from exc
    return Wheel(
        path=path,
        sha256=sha256_of(path),
        size=size,
        release=check_name(str(baked.get("release", ""))),
        version=fields.get("Version", "?"),
        commit=str(baked.get("commit", "unknown")),
        dirty=bool(baked.get("dirty", False)),
    )


def env_dir(root: Path, release: str) -> Path:
    return root / check_name(release)


def python_of(root: Path, release: str) -> Path:
    return env_dir(root, release) / "bin" / "python"


def is_installed(root: Path, release: str) -> bool:
    return (env_dir(root, release) / _COMPLETE).exists()


def _set_writable(path: Path, writable: bool) -> None:
    """Seal an installed release (read-only, and nothing for group or others: it lives
    under var/, which is owner-only) or unseal it to remove it."""
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames, "."]:
            p = Path(dirpath, name)
            if p.is_symlink():
                continue
            mode = p.stat().st_mode
            p.chmod(mode | stat.S_IWUSR if writable else mode & ~0o277)


def install(wheel: Wheel, root: Path) -> Path:
    """Install `wheel` into `<root>/<release>/` (idempotent); returns the environment.

    Built in a temporary directory and renamed into place, so a crash leaves no
    half-installed release under the real name."""
    target = env_dir(root, wheel.release)
    if is_installed(root, wheel.release):
        recorded = json.loads((target / _COMPLETE).read_text()).get("sha256")
        if recorded != wheel.sha256:
            raise ReleaseError(
                f"release {wheel.release} is already installed from another wheel "
                f"(sha256 {recorded[:12]}…, this one {wheel.sha256[:12]}…)"
            )
        return target
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=f".{wheel.release}-", dir=root))
    try:
        _run([sys.executable, "-m", "venv", "--without-pip", str(staging)], "creating the venv")
        purelib = Path(
            sysconfig.get_paths(vars={"base": str(staging), "platbase": str(staging)})["purelib"]
        )
        deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        (purelib / "_raftops_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
        requirements = staging / "requirements.txt"
        requirements.write_text(
            f"{DISTRIBUTION} @ {wheel.path.resolve().as_uri()} --hash=sha256:{wheel.sha256}\n"
        )
        _run(
            [sys.executable, "-m", "pip", "--python", str(staging / "bin" / "python"), "install",
             "--quiet", "--no-deps", "--no-index", "--require-hashes", "-r", str(requirements)],
            "installing the wheel",
        )  # fmt: skip
        (staging / _COMPLETE).write_text(
            json.dumps({"sha256": wheel.sha256, "wheel": wheel.path.name})
        )
        _set_writable(staging, False)
        staging.rename(target)
    except BaseException:
        _set_writable(staging, True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def uninstall(root: Path, release: str) -> None:
    target = env_dir(root, release)
    if target.exists():
        _set_writable(target, True)
        shutil.rmtree(target)


def inspect(root: Path, release: str) -> dict[str, Any]:
    """The build identity a node started from this environment reports (`daemon.build`)."""
    probe = "import json; from daemon import build; print(json.dumps(build.current().as_json()))"
    done = _run([str(python_of(root, release)), "-P", "-c", probe], "importing the release",
                cwd=env_dir(root, release), env={**os.environ, "DAEMON_RELEASE": release})  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run(cmd: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReleaseError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        raise ReleaseError(f"{what} failed: {(done.stderr or done.stdout).strip()[-600:]}")
    return done
