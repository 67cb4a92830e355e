"""The releases tests share the runbook tests' real worker (verification is a task)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.console.runbooks.conftest import isolated_broker, start_worker

__all__ = ["isolated_broker", "shared_releases_dir", "start_worker"]


@pytest.fixture
def shared_releases_dir(settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One releases folder for the test and the worker it starts (request it first)."""
    settings.RELEASES_DIR = tmp_path / "releases"
    monkeypatch.setenv("RELEASES_DIR", str(settings.RELEASES_DIR))
    return settings.RELEASES_DIR
