"""Fixtures for the alerts' tests."""

from __future__ import annotations

import pytest

from console.alerts.models import Alert
from tests.console.alerts.support import make_alert, make_cluster


@pytest.fixture
def alert() -> Alert:
    """A firing replication-lag alert on a 3-node cluster `prod`."""
    return make_alert(make_cluster())
