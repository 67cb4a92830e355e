"""/api/clusters: clusters with their nodes, the mirrored execution history, and the
cluster's operations (read from and written to the daemon, journaled)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema
from ninja.responses import Status
from pydantic import BaseModel, Field

from console.clusters.lookup import get_cluster
from console.clusters.models import Cluster, Execution, Node
from console.clusters.overview import overview_of
from console.core.api_types import BigId, ErrorOut, Name, Text, Time
from console.core.roles import actor_of, require_role
from console.dashboard import daemon_operations, history

router = Router(tags=["clusters"])

ClusterName = Path(..., min_length=1, max_length=63, pattern=r"^[-a-zA-Z0-9_]+$")
Errors = {404: ErrorOut, 422: ErrorOut}
DaemonErrors = {
    **Errors,
    400: ErrorOut,
    403: ErrorOut,
    409: ErrorOut,
    429: ErrorOut,
    502: ErrorOut,
    503: ErrorOut,
}


class NodeOut(Schema):
    name: str
    http_url: str
    role: str
    is_leader: bool
    reachable: bool
    removed: bool
    term: int | None
    commit_index: int | None
    applied_index: int | None
    lag_entries: int | None
    lag_ms: float | None
    draining: bool
    version: str
    digest: str
    last_seen_at: datetime | None = Field(description="last successful poll")
    last_polled_at: datetime | None


class ClusterOut(Schema):
    name: str
    description: str
    leader: str | None
    term: int
    commit_index: int
    has_quorum: bool
    cluster_size: int
    quorum_size: int = Field(description="members needed for a majority")
    fault_tolerance: int = Field(description="reachable nodes that can be lost keeping quorum")
    fault_tolerance_text: str
    replication_lag_ms: float | None
    last_polled_at: datetime | None = Field(description="when the collector last polled")
    nodes: list[NodeOut]


class ExecutionOut(BaseModel):
    """A plain pydantic model, not a ninja Schema: the rows arrive as dicts (values()),
    which pydantic validates in its core; a Schema wraps each row in a getter and reads
    its 11 fields one Python call at a time (a quarter of a page's time in-process)."""

    seq: int
    execution_id: str
    operation_id: str
    status: str
    duration_ms: float
    node_name: str
    started_at: datetime
    finished_at: datetime
    attempts: int
    cached: bool
    error: str


class ExecutionPage(Schema):
    items: list[ExecutionOut]
    next_before_seq: int | None = Field(description="pass as `before_seq` for the next page")


class ExecutionFilters(Schema):
    before_seq: BigId | None = Field(None, description="only executions with a smaller seq")
    limit: int = Field(50, ge=1, le=500)
    operation: Text | None = Field(None, max_length=128)
    status: Text | None = Field(None, max_length=16, description="success, failure or timeout")
    node: Text | None = Field(None, max_length=63)
    since: Time | None = Field(None, description="finished at or after")
    until: Time | None = Field(None, description="finished before")


class OperationIn(Schema):
    id: Name
    name: Text | None = Field(None, min_length=1, max_length=200)
    handler: Text | dict[str, Any] = Field(
        description='a string (logged, never run) or {"kind": "noop"|"sleep"|"log"|...}'
    )
    description: Text | None = Field(None, max_length=2000)
    timeoutMs: int | None = Field(None, ge=1, le=3_600_000)
    retries: dict[str, Any] | None = None
    cacheTtlMs: int | None = Field(None, ge=0, le=86_400_000)


class ExecuteIn(Schema):
    params: dict[str, Any] = Field(default_factory=dict)


def cluster_view(cluster: Cluster) -> dict:
    view = overview_of(cluster)
    return {
        "name": cluster.name,
        "description": cluster.description,
        "leader": cluster.leader_name or None,
        "term": cluster.term,
        "commit_index": cluster.commit_index,
        "has_quorum": cluster.has_quorum,
        "cluster_size": view.size,
        "quorum_size": view.majority,
        "fault_tolerance": view.fault_tolerance,
        "fault_tolerance_text": view.can_lose,
        "replication_lag_ms": cluster.replication_lag_ms,
        "last_polled_at": cluster.last_polled_at,
        "nodes": [node_view(cluster, n) for n in view.nodes],
    }


def node_view(cluster: Cluster, node: Node) -> dict:
    view = {field: getattr(node, field) for field in NodeOut.model_fields if field != "is_leader"}
    return {**view, "is_leader": bool(cluster.leader_name) and node.name == cluster.leader_name}


def executions_query(cluster: Cluster | str, filters: ExecutionFilters) -> QuerySet[Execution]:
    """Newest first, keyset-paged by seq, through an index for every filter combination
    (console/dashboard/history.py: the filters are the history page's). `cluster` may be
    its name: the id is then looked up inside this query (no round trip of its own)."""
    page_filters = history.Filters(
        operation=filters.operation or "",
        status=filters.status or "",
        node=filters.node or "",
        since=filters.since,
        until=filters.until,
    )
    rows = history.newest_by_seq(cluster, page_filters, filters.before_seq)
    # One row more than asked tells whether another page follows.
    return rows[: filters.limit + 1]


EXECUTION_FIELDS = tuple(ExecutionOut.model_fields)


def executions_page(
    cluster: Cluster | str, filters: ExecutionFilters
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of rows as dicts of the answer's fields (no model instances to build)."""
    page = list(executions_query(cluster, filters).values(*EXECUTION_FIELDS))
    more = len(page) > filters.limit
    page = page[: filters.limit]
    return page, (page[-1]["seq"] if more else None)


@router.get("", response=list[ClusterOut])
def list_clusters(request: HttpRequest) -> list[dict]:
    return [cluster_view(c) for c in Cluster.objects.prefetch_related("nodes")]


@router.get("/{name}", response={200: ClusterOut, **Errors})
def get_one(request: HttpRequest, name: str = ClusterName) -> dict:
    return cluster_view(get_cluster(name))


@router.get("/{name}/nodes", response={200: list[NodeOut], **Errors})
def list_nodes(request: HttpRequest, name: str = ClusterName) -> list[dict]:
    cluster = get_cluster(name)
    return [node_view(cluster, n) for n in cluster.nodes.all()]


@router.get("/{name}/executions", response={200: ExecutionPage, **Errors})
def list_executions(
    request: HttpRequest, filters: Query[ExecutionFilters], name: str = ClusterName
) -> dict:
    """The execution history the collector mirrored, newest first."""
    # By name: the cluster is found inside the page's query. Only an empty page asks
    # whether the cluster exists at all (a 404, not an empty history).
    page, next_before = executions_page(name, filters)
    if not page:
        get_cluster(name)
    return {"items": page, "next_before_seq": next_before}


@router.get("/{name}/operations", response={200: list[dict[str, Any]], **DaemonErrors})
def list_operations(request: HttpRequest, name: str = ClusterName) -> Any:
    """The operations defined on the cluster, read from a reachable node."""
    return daemon_operations.list_operations(get_cluster(name))


@router.get("/{name}/operations/{op_id}", response={200: dict[str, Any], **DaemonErrors})
def get_operation(request: HttpRequest, op_id: Name, name: str = ClusterName) -> Any:
    return daemon_operations.get_operation(get_cluster(name), op_id)


@router.post(
    "/{name}/operations", response={200: dict[str, Any], 201: dict[str, Any], **DaemonErrors}
)
def define_operation(request: HttpRequest, body: OperationIn, name: str = ClusterName) -> Status:
    """Define (201) or redefine (200) an operation. Needs the operator role."""
    require_role(request, "operator")
    definition = body.model_dump(exclude_none=True)
    status, stored = daemon_operations.define_operation(
        get_cluster(name), definition, actor_of(request)
    )
    return Status(status, stored)


@router.delete("/{name}/operations/{op_id}", response={200: dict[str, Any], **DaemonErrors})
def delete_operation(request: HttpRequest, op_id: Name, name: str = ClusterName) -> Any:
    """Delete an operation's definition. Needs the operator role."""
    require_role(request, "operator")
    return daemon_operations.delete_operation(get_cluster(name), op_id, actor_of(request))


@router.post("/{name}/operations/{op_id}/execute", response={200: dict[str, Any], **DaemonErrors})
def execute_operation(
    request: HttpRequest, op_id: Name, body: ExecuteIn | None = None, name: str = ClusterName
) -> Any:
    """Run an operation now; answers with the committed execution record. Needs operator."""
    require_role(request, "operator")
    params = body.params if body is not None else {}
    return daemon_operations.execute_operation(get_cluster(name), op_id, params, actor_of(request))
