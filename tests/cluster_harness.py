"""Real daemon clusters for tests and benchmarks: separate processes on loopback.

Each node is `python -m daemon run --config FILE`, exactly as a pod runs it, on
free ports. Tests kill and restart these processes to check failover.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token-0123456789"
OPERATE_TOKEN = "test-operate-token-0123456789"
READ_TOKEN = "test-read-token-0123456789ab"
RAFT_PASSWORD = "test-raft-secret-0123456789"


def daemon_free_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything the daemon reads, plus `extra`."""
    from daemon.config import ENV_OVERRIDES

    daemon_vars = set(ENV_OVERRIDES) | {
        "RAFT_PASSWORD",
        "RAFT_PASSWORD_FILE",
        "DAEMON_TOKEN",
        "DAEMON_OPERATE_TOKEN",
        "DAEMON_READ_TOKEN",
        "DAEMON_TOKENS_FILE",
    }
    env = {k: v for k, v in os.environ.items() if k not in daemon_vars}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port not handed out before in this test process: the kernel
    can give the same ephemeral port to two back-to-back bind(0) calls, and two
    nodes of one cluster must never share one."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_for(
    condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll until condition() is truthy; return its value or fail with `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (httpx.HTTPError, ValueError, KeyError, OSError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what or condition}: {last_error}"
    )


@dataclass
class Node:
    name: str
    http_port: int
    raft_port: int
    data_dir: Path
    config_path: Path
    log_path: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def raft_address(self) -> str:
        return f"127.0.0.1:{self.raft_port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cluster:
    base_dir: Path
    size: int = 3
    overrides: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    _http: httpx.Client | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for i in range(self.size):
            self._new_node(i)
        self._write_configs()

    def _new_node(self, i: int) -> Node:
        name = f"unrdf-daemon-{i}"
        node_dir = self.base_dir / name
        node_dir.mkdir(parents=True, exist_ok=True)
        node = Node(
            name=name,
            http_port=free_port(),
            raft_port=free_port(),
            data_dir=node_dir / "data",
            config_path=node_dir / "daemon-config.json",
            log_path=node_dir / "node.log",
        )
        self.nodes.append(node)
        return node

    def peers(self, nodes: list[Node] | None = None) -> list[dict]:
        return [
            {"name": n.name, "raftAddress": n.raft_address, "httpUrl": n.url}
            for n in (nodes or self.nodes)
        ]

    def config_for(self, node: Node, peers: list[dict]) -> dict:
        config = {
            "nodeName": node.name,
            "dataDir": str(node.data_dir),
            "http": {"host": "127.0.0.1", "port": node.http_port},
            "raft": {"bindAddress": node.raft_address},
            "peers": peers,
        }
        for key, value in self.overrides.items():
            if isinstance(value, dict):
                config.setdefault(key, {}).update(value)
            else:
                config[key] = value
        return config

    def _write_configs(self) -> None:
        peers = self.peers()
        for node in self.nodes:
            node.config_path.write_text(json.dumps(self.config_for(node, peers), indent=2))

    # ---- processes -------------------------------------------------------
    def process_env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "RAFT_PASSWORD": RAFT_PASSWORD,
            "DAEMON_TOKEN": ADMIN_TOKEN,
            "DAEMON_OPERATE_TOKEN": OPERATE_TOKEN,
            "DAEMON_READ_TOKEN": READ_TOKEN,
            "PYTHONPATH": str(ROOT),
        }
        env.update(self.env)
        return env

    def start_node(self, node: Node, extra_env: dict | None = None) -> None:
        log = node.log_path.open("ab")
        node.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(node.config_path)],
            cwd=ROOT,
            env={**self.process_env(), **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def start(self) -> Cluster:
        for node in self.nodes:
            self.start_node(node)
        self.wait_ready()
        return self

    def wait_ready(self, nodes: list[Node] | None = None, timeout: float = 30) -> None:
        for node in nodes or [n for n in self.nodes if n.alive]:
            wait_for(
                lambda n=node: self.get(n, "/health/startup").status_code == 200,
                timeout=timeout,
                what=f"{node.name} ready\n{node.log()[-2000:]}",
            )

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        assert node.proc is not None
        node.proc.send_signal(sig)
        node.proc.wait(timeout=30)

    def stop_all(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        for node in self.nodes:
            if node.alive:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()

    # ---- HTTP --------------------------------------------------------------
    @property
    def http(self) -> httpx.Client:
        # One pooled client: a fresh one per call costs ~40 ms (SSL context, no keep-alive).
        if self._http is None:
            self._http = httpx.Client()
        return self._http

    def get(self, node: Node, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(node.url + path, timeout=kwargs.pop("timeout", 5), **kwargs)

    def post(
        self, node: Node, path: str, token: str | None = ADMIN_TOKEN, **kwargs: Any
    ) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.post(
            node.url + path, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs
        )

    def delete(self, node: Node, path: str, token: str | None = ADMIN_TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.delete(node.url + path, headers=headers, timeout=30)

    def add_node(self) -> Node:
        """Start one more node that knows every current member, itself included."""
        node = self._new_node(len(self.nodes))
        node.config_path.write_text(json.dumps(self.config_for(node, self.peers())))
        self.start_node(node)
        return node

    def cluster_view(self, node: Node | None = None) -> dict:
        return self.get(node or self.live_nodes()[0], "/health/cluster").json()

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.alive]

    def leader(self, timeout: float = 20) -> Node:
        def find() -> Node | None:
            names = {self.get(n, "/health/node").json()["leader"] for n in self.live_nodes()}
            names.discard(None)
            if len(names) != 1:
                return None
            name = names.pop()
            return next((n for n in self.live_nodes() if n.name == name), None)

        return wait_for(find, timeout=timeout, what="one agreed leader")

    def define(self, node: Node, op: dict) -> httpx.Response:
        return self.post(node, "/operations", json=op)

    def wait_converged(self, timeout: float = 20) -> list[dict]:
        """Wait until every live node has applied the same index with the same digest."""

        def converged() -> list[dict] | None:
            views = [self.get(n, "/health/node").json() for n in self.live_nodes()]
            if len({(v["appliedIndex"], v["digest"]) for v in views}) == 1:
                return views
            return None

        return wait_for(converged, timeout=timeout, what="all nodes at the same index and digest")
