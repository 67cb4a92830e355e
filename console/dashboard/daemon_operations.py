"""A cluster's operations, read from and written to its daemon nodes; writes are journaled.

The API and the operations page both call these. Role checks belong to the caller.
Failures raise `DaemonError`; the API turns them into 4xx (the daemon's own refusal)
or 502/503 (no node answered).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from console.clusters.daemon_client import DaemonClient, DaemonError, node_urls
from console.clusters.models import Cluster
from console.events import journal

# An execution answers after its record is committed: allow the daemon's default
# 30 s operation timeout plus a retry or two before giving up on the answer.
EXECUTE_TIMEOUT_S = 65.0


def _on_some_node(cluster: Cluster, call: Callable[[str], Any], *, idempotent: bool) -> Any:
    """Try the nodes best first. Move on when a node refused the connection or said 503
    (draining, no quorum: it did nothing); also after a lost answer when repeating is
    harmless. Anything else is the answer, or the daemon's refusal, and stops here."""
    urls = node_urls(cluster)
    if not urls:
        raise DaemonError(f"cluster {cluster.name} has no known node URLs", 503)
    last: DaemonError | None = None
    for url in urls:
        try:
            return call(url)
        except DaemonError as err:
            last = err
            if err.connect_failed or err.status == 503 or (idempotent and err.status is None):
                continue
            raise
    assert last is not None
    raise last


def _op_path(op_id: str) -> str:
    return quote(op_id, safe="")


def list_operations(cluster: Cluster) -> list[dict]:
    client = DaemonClient(cluster, role="read")
    return _on_some_node(cluster, lambda url: client.get(url, "/operations"), idempotent=True)


def get_operation(cluster: Cluster, op_id: str) -> dict:
    client = DaemonClient(cluster, role="read")
    path = f"/operations/{_op_path(op_id)}"
    return _on_some_node(cluster, lambda url: client.get(url, path), idempotent=True)


def define_operation(cluster: Cluster, definition: dict, actor: str) -> tuple[int, dict]:
    """Store a definition (201 created, 200 updated) and journal `operation.defined`."""
    client = DaemonClient(cluster, role="operate")
    status, stored = _on_some_node(
        cluster,
        lambda url: client.call("POST", url, "/operations", json=definition),
        idempotent=True,  # posting the same definition twice stores the same thing
    )
    journal.append(
        "operation.defined",
        actor=actor,
        cluster=cluster,
        operation_id=definition["id"],
        created=status == 201,
    )
    return status, stored


def delete_operation(cluster: Cluster, op_id: str, actor: str) -> dict:
    client = DaemonClient(cluster, role="operate")
    path = f"/operations/{_op_path(op_id)}"
    answer = _on_some_node(cluster, lambda url: client.delete(url, path), idempotent=True)
    journal.append("operation.deleted", actor=actor, cluster=cluster, operation_id=op_id)
    return answer


def execute_operation(cluster: Cluster, op_id: str, params: dict, actor: str) -> dict:
    """Run an operation and journal `operation.executed` with its outcome.

    Not repeated on another node after a lost answer: the first node may have run it.
    """
    client = DaemonClient(cluster, read_timeout_s=EXECUTE_TIMEOUT_S, role="operate")
    path = f"/execute/{_op_path(op_id)}"
    record = _on_some_node(
        cluster, lambda url: client.post(url, path, json={"params": params}), idempotent=False
    )
    journal.append(
        "operation.executed",
        actor=actor,
        cluster=cluster,
        operation_id=op_id,
        execution_id=record.get("id") if isinstance(record, dict) else None,
        status=record.get("status") if isinstance(record, dict) else None,
    )
    return record
