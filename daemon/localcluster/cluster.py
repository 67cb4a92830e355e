"""A scratch local cluster driven over HTTP: nodes on free loopback ports, started,
killed and restarted through the node-process layer, with the calls tests, benchmarks
and release checks make (ready, leader, converged, define)."""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from daemon.localcluster.layout import Layout, LayoutError, NodeSpec
from daemon.localcluster.node import NodeProcess, stop_nodes
from daemon.localcluster.polling import wait_for
from daemon.localcluster.ports import free_port

# The default of `token` in post() and delete(): the cluster's admin token (None: send none).
ADMIN: Any = "<the cluster's admin token>"


@dataclass
class LocalNode:
    spec: NodeSpec
    layout: Layout
    process: NodeProcess | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def http_port(self) -> int:
        return self.spec.http_port

    @property
    def raft_port(self) -> int:
        return self.spec.raft_port

    @property
    def data_dir(self) -> Path:
        return self.layout.data_dir(self.name)

    @property
    def config_path(self) -> Path:
        return self.layout.config_path(self.name)

    @property
    def log_path(self) -> Path:
        return self.layout.log_path(self.name)

    @property
    def url(self) -> str:
        return self.spec.url

    @property
    def raft_address(self) -> str:
        return self.spec.raft_address

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.handle.popen if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class LocalCluster:
    """A scratch cluster on free loopback ports (tests, benchmarks, release checks), with
    the HTTP calls that drive it. `tokens` maps roles to the tokens the nodes accept."""

    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        overrides: dict | None = None,
        env: dict[str, str] | None = None,
        *,
        tokens: dict[str, str],
        raft_password: str | None = None,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.size = size
        self.overrides = overrides or {}
        self.env = env or {}
        self.tokens = tokens
        self._http: httpx.Client | None = None
        self.layout = Layout.on_free_ports(self.base_dir, size, base_config=self.overrides)
        self.layout.save()
        self.layout.write_secrets(raft_password, tokens)
        self.layout.write_configs()
        self.nodes = [LocalNode(spec, self.layout) for spec in self.layout.nodes]

    def peers(self, nodes: list[LocalNode] | None = None) -> list[dict]:
        return self.layout.peers([n.spec for n in nodes] if nodes else None)

    def config_for(self, node: LocalNode, peers: list[dict]) -> dict:
        return self.layout.config_for(node.spec, peers)

    # ---- processes -------------------------------------------------------
    def start_node(self, node: LocalNode, extra_env: dict | None = None) -> None:
        node.process = NodeProcess(self.layout, node.name, env={**self.env, **(extra_env or {})})
        node.process.start()

    def start(self) -> LocalCluster:
        for node in self.nodes:
            self.start_node(node)
        self.wait_ready()
        return self

    def wait_ready(self, nodes: list[LocalNode] | None = None, timeout: float = 30) -> None:
        for node in nodes or [n for n in self.nodes if n.alive]:
            wait_for(
                lambda n=node: self.get(n, "/health/startup").status_code == 200,
                timeout=timeout,
                what=f"{node.name} ready\n{node.log()[-2000:]}",
            )

    def kill(self, node: LocalNode, sig: int = signal.SIGKILL) -> None:
        assert node.proc is not None
        node.proc.send_signal(sig)
        node.proc.wait(timeout=30)

    def stop_all(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        processes = [n.process for n in self.nodes if n.process is not None]
        # Nodes another process started on this layout (a `daemonctl scale`, a restart
        # by the lifecycle functions) are stopped too: nothing outlives the cluster.
        try:
            on_disk = Layout.load(self.layout.root).nodes
        except LayoutError:
            on_disk = []
        ours = {p.name for p in processes}
        layout = Layout(self.layout.root, on_disk, self.overrides)
        processes += [NodeProcess(layout, spec.name) for spec in on_disk if spec.name not in ours]
        stop_nodes(processes, grace_s=20)

    # ---- HTTP --------------------------------------------------------------
    @property
    def http(self) -> httpx.Client:
        # One pooled client: a fresh one per call costs ~40 ms (SSL context, no keep-alive).
        if self._http is None:
            self._http = httpx.Client()
        return self._http

    def get(self, node: LocalNode, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(node.url + path, timeout=kwargs.pop("timeout", 5), **kwargs)

    def post(
        self, node: LocalNode, path: str, token: str | None = ADMIN, **kwargs: Any
    ) -> httpx.Response:
        token = self.tokens.get("admin") if token is ADMIN else token
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.post(
            node.url + path, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs
        )

    def delete(self, node: LocalNode, path: str, token: str | None = ADMIN) -> httpx.Response:
        token = self.tokens.get("admin") if token is ADMIN else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.delete(node.url + path, headers=headers, timeout=30)

    def add_node(self) -> LocalNode:
        """Start one more node that knows every current member, itself included."""
        node = LocalNode(self.layout.add_node(free_port(), free_port()), self.layout)
        self.nodes.append(node)
        self.start_node(node)
        return node

    def cluster_view(self, node: LocalNode | None = None) -> dict:
        return self.get(node or self.live_nodes()[0], "/health/cluster").json()

    def live_nodes(self) -> list[LocalNode]:
        return [n for n in self.nodes if n.alive]

    def leader(self, timeout: float = 20) -> LocalNode:
        def find() -> LocalNode | None:
            names = {self.get(n, "/health/node").json()["leader"] for n in self.live_nodes()}
            names.discard(None)
            if len(names) != 1:
                return None
            name = names.pop()
            return next((n for n in self.live_nodes() if n.name == name), None)

        return wait_for(find, timeout=timeout, what="one agreed leader")

    def define(self, node: LocalNode, op: dict) -> httpx.Response:
        return self.post(node, "/operations", json=op)

    def wait_converged(self, timeout: float = 20) -> list[dict]:
        """Wait until every live node has applied the same index with the same digest."""

        def converged() -> list[dict] | None:
            views = [self.get(n, "/health/node").json() for n in self.live_nodes()]
            if len({(v["appliedIndex"], v["digest"]) for v in views}) == 1:
                return views
            return None

        return wait_for(converged, timeout=timeout, what="all nodes at the same index and digest")
