"""Helpers for the deploy/ tests: where things are, and the real tools operators run, or a clear skip."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MONITORING = DEPLOY / "monitoring"


def tool_or_skip(name: str, package: str) -> str:
    """The tool's path; without it skip, naming the package, unless CI requires the
    deploy tools (REQUIRE_DEPLOY_TOOLS=1, set by .ci/run), where a skip would hide a gap."""
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        if os.environ.get("REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(f"REQUIRE_DEPLOY_TOOLS=1 but {name} is not installed ({package})")
        pytest.skip(f"{name} not installed (apt-get install -y --no-install-recommends {package})")
    return path
