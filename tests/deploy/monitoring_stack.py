"""A real Prometheus, a real Alertmanager and a webhook receiver, on loopback free ports,
for the end-to-end tests of deploy/monitoring/."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.cluster_harness import free_port, wait_for
from tests.deploy.tools import MONITORING, tool_or_skip


@dataclass
class Service:
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@contextmanager
def _running(args: list[str], port: int, log_path: Path, ready_path: str) -> Iterator[Service]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    service = Service(proc, port, log_path)
    try:
        wait_for(
            lambda: httpx.get(service.url + ready_path, timeout=1).status_code == 200,
            timeout=30,
            what=f"{args[0]} ready on {port}\n{service.log() if log_path.exists() else ''}",
        )
        yield service
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fast_rules(directory: Path, for_duration: str = "4s") -> Path:
    """A copy of the real rules evaluated every second, with every `for:` shortened, so a
    test sees pending → firing → resolved in seconds; the expressions are untouched."""
    doc = yaml.safe_load((MONITORING / "rules" / "daemon-rules.yml").read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = for_duration
    path = directory / "daemon-rules.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextmanager
def prometheus(
    directory: Path, targets: list[str], alertmanager: str | None = None
) -> Iterator[Service]:
    """deploy/monitoring/prometheus.yml with loopback static targets instead of DNS
    discovery, one-second intervals and the fast rule copy."""
    binary = tool_or_skip("prometheus", "prometheus")
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"] = {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(fast_rules(directory))]
    [job] = config["scrape_configs"]
    del job["dns_sd_configs"], job["relabel_configs"]
    job["static_configs"] = [{"targets": targets}]
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    else:
        del config["alerting"]
    config_path = directory / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    args = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={directory / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with _running(args, port, directory / "prometheus.log", "/-/ready") as service:
        yield service


@contextmanager
def alertmanager(directory: Path, config_path: Path) -> Iterator[Service]:
    binary = tool_or_skip("prometheus-alertmanager", "prometheus-alertmanager")
    port = free_port()
    args = [
        binary,
        f"--config.file={config_path}",
        f"--storage.path={directory / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip: a single instance, nothing else to reach
        "--log.level=warn",
    ]
    with _running(args, port, directory / "alertmanager.log", "/-/ready") as service:
        yield service


@dataclass
class WebhookReceiver:
    """A tiny HTTP server recording every Alertmanager webhook POST by path."""

    port: int = field(default_factory=free_port)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def alerts_at(self, path: str) -> list[dict[str, Any]]:
        return [alert for p, body in list(self.received) if p == path for alert in body["alerts"]]

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def active_alerts(service: Service) -> list[dict[str, Any]]:
    return httpx.get(service.url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]


def alert_state(service: Service, name: str) -> str | None:
    states = {a["state"] for a in active_alerts(service) if a["labels"]["alertname"] == name}
    return "firing" if "firing" in states else (states.pop() if states else None)


RECEIVERS = ("page", "chat", "email")


def webhook_alertmanager_config(directory: Path, receiver: WebhookReceiver) -> Path:
    """deploy/monitoring/alertmanager.yml with its route tree as shipped, each receiver's
    integration swapped for a webhook to `receiver` at /<receiver name> (how a deployment
    configures its receivers), and second-scale timers instead of minutes."""
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    assert [r["name"] for r in config["receivers"]] == list(RECEIVERS)
    config["receivers"] = [
        {
            "name": name,
            "webhook_configs": [{"url": receiver.url(f"/{name}"), "send_resolved": True}],
        }
        for name in RECEIVERS
    ]
    config["global"]["resolve_timeout"] = "5s"
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(
            {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
            if route is config["route"]
            else {k: "1s" for k in ("group_wait", "group_interval") if k in route}
        )
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
