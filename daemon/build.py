"""What this node runs: its build identity and the state machine's code versions.

A rolling upgrade mixes two builds in one cluster, so every node says which one it is:
- `release`: the name the console installed it under (`DAEMON_RELEASE`, set by the node
  manager when it starts a node from `var/releases/<release>/`), else "dev";
- `package`: the installed distribution's version (`raftops`), read from its metadata;
- `commit`: the git commit the wheel was built from, baked into `daemon/_build.json` by the
  release builder; a node run from a checkout asks git instead;
- `maxCodeVersion`: the highest `ver=` among the replicated methods this build has. A
  cluster can switch to code version N only when every member reports at least N.

"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from daemon.state import ReplicatedState

DISTRIBUTION = "raftops"
BUILD_INFO_FILE = Path(__file__).with_name("_build.json")


def method_table(cls: type) -> list[tuple[int, str]]:
    """The sorted (ver, name) pairs by which pysyncobj numbers `cls`'s replicated methods.

    pysyncobj registers each `@replicated` method twice, as itself and as `<name>_v<ver>`,
    and numbers the second kind in this order (`SyncObj.__init__`). Any change here other
    than appending pairs with a higher `ver` makes old journals replay the wrong method."""
    table = []
    for name in dir(cls):
        func = getattr(cls, name, None)
        if getattr(func, "replicated", False) and name != getattr(func, "origName", name):
            table.append((int(func.ver), name))
    return sorted(table)


def max_code_version(cls: type) -> int:
    return max((ver for ver, _ in method_table(cls)), default=0)


@dataclass(frozen=True)
class Build:
    release: str
    package: str
    commit: str
    dirty: bool
    max_code_version: int

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["maxCodeVersion"] = body.pop("max_code_version")
        return body

    def as_wire(self) -> dict[str, Any]:
        """The `build` object of /health/node: what was built, not what it supports."""
        return {
            "release": self.release,
            "package": self.package,
            "commit": self.commit,
            "dirty": self.dirty,
        }


def _baked() -> dict[str, Any]:
    try:
        return json.loads(BUILD_INFO_FILE.read_text())
    except (OSError, ValueError):
        return {}


def _git_commit(root: Path) -> tuple[str, bool]:
    """(commit, dirty) of a checkout, or ("unknown", False) outside one."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", False
    return head, bool(status.strip())


def _package_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


@cache
def current() -> Build:
    """This process's build; computed once (git is asked at most once per process)."""
    baked = _baked()
    if baked:
        commit, dirty = str(baked.get("commit", "unknown")), bool(baked.get("dirty", False))
    else:
        commit, dirty = _git_commit(Path(__file__).resolve().parent.parent)
    return Build(
        release=os.environ.get("DAEMON_RELEASE") or str(baked.get("release") or "dev"),
        package=_package_version(),
        commit=commit,
        dirty=dirty,
        max_code_version=max_code_version(ReplicatedState),
    )
