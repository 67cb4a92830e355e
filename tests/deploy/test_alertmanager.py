"""The escalation config: amtool accepts it, routes each priority to its receiver, and a
real Alertmanager delivers to a local webhook receiver (a tiny HTTP server)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.cluster_harness import wait_for
from tests.deploy.monitoring_stack import WebhookReceiver, alertmanager, webhook_alertmanager_config
from tests.deploy.tools import MONITORING, tool_or_skip

CONFIG = MONITORING / "alertmanager.yml"


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    amtool = tool_or_skip("amtool", "prometheus-alertmanager")
    return subprocess.run([amtool, *args], capture_output=True, text=True, timeout=60)


def test_amtool_accepts_the_config() -> None:
    result = _amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 receivers" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["priority=P1", "alertname=DaemonClusterDown"], "page"),
        (["priority=P2", "alertname=DaemonHighErrorRate"], "chat"),
        (["priority=P3", "alertname=DaemonDiskUsageHigh"], "email"),
        (["alertname=SomethingUnlabelled"], "email"),
    ],
)
def test_each_priority_routes_to_its_receiver(labels: list[str], receiver: str) -> None:
    result = _amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


def test_the_config_with_webhook_receivers_is_still_valid(tmp_path: Path) -> None:
    path = webhook_alertmanager_config(tmp_path, WebhookReceiver(port=9))
    result = _amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def _alert(name: str, priority: str) -> dict:
    return {
        "labels": {"alertname": name, "priority": priority, "service": "daemon"},
        "annotations": {"summary": f"{name} (test)"},
    }


def test_a_real_alertmanager_delivers_each_priority_to_its_receiver(tmp_path: Path) -> None:
    with WebhookReceiver().running() as hooks:
        config = webhook_alertmanager_config(tmp_path, hooks)
        with alertmanager(tmp_path, config) as am:
            alerts = [
                _alert("DaemonClusterDown", "P1"),
                _alert("DaemonClusterUnhealthy", "P2"),  # inhibited by ClusterDown
                _alert("DaemonHighLatency", "P2"),
                _alert("DaemonMemoryHigh", "P3"),
            ]
            response = httpx.post(am.url + "/api/v2/alerts", json=alerts, timeout=5)
            assert response.status_code == 200, response.text

            def delivered() -> bool:
                return all(hooks.alerts_at(f"/{r}") for r in ("page", "chat", "email"))

            wait_for(delivered, timeout=20, what=f"a webhook per receiver; got {hooks.received}")
            names = {
                path: {a["labels"]["alertname"] for a in hooks.alerts_at(path)}
                for path in ("/page", "/chat", "/email")
            }
            assert names == {
                "/page": {"DaemonClusterDown"},
                "/chat": {"DaemonHighLatency"},
                "/email": {"DaemonMemoryHigh"},
            }
            assert all(
                a["status"] == "firing" for _, body in hooks.received for a in body["alerts"]
            )
