"""Real daemon clusters for tests: daemon.localcluster's LocalCluster with the tests'
tokens. Each node is `python -m daemon run --config FILE`, exactly as a pod runs it, on
free loopback ports; tests kill and restart these processes to check failover.
`Node.process` is the layer's handle, `Node.proc` its Popen (this process started it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from daemon.localcluster import free_port, node_env, wait_for
from daemon.localcluster.cluster import LocalCluster, LocalNode

__all__ = [
    "ADMIN_TOKEN",
    "OPERATE_TOKEN",
    "RAFT_PASSWORD",
    "READ_TOKEN",
    "ROOT",
    "Cluster",
    "Node",
    "daemon_free_env",
    "free_port",
    "wait_for",
]

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "test-admin-token-0123456789"
OPERATE_TOKEN = "test-operate-token-0123456789"
READ_TOKEN = "test-read-token-0123456789ab"
RAFT_PASSWORD = "test-raft-secret-0123456789"
TOKENS = {"admin": ADMIN_TOKEN, "operate": OPERATE_TOKEN, "read": READ_TOKEN}

Node = LocalNode


def daemon_free_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything the daemon reads, plus `extra`."""
    return node_env({"PYTHONPATH": str(ROOT), **extra})


class Cluster(LocalCluster):
    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        overrides: dict | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            base_dir,
            size,
            overrides,
            {"PYTHONPATH": str(ROOT), **(env or {})},
            tokens=TOKENS,
            raft_password=RAFT_PASSWORD,
        )

    def get(
        self, node: Node, path: str, token: str | None = READ_TOKEN, **kwargs: Any
    ) -> httpx.Response:
        """GET with the read token (definitions and results need one by default);
        `token=None` makes the call anonymous."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if token and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {token}"
        return super().get(node, path, headers=headers, **kwargs)
