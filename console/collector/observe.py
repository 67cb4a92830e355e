"""One poll of one cluster over HTTP, with no database: what every node said.

Every known node is asked for its own view (/health/node, with disk usage) and its
queue (/queue) at once; the cluster summary (/health/cluster with per-member lag and
membership, /metrics lifetime totals, /metrics/5m latency and errors) comes from one
node, the last known leader first. Every call has its own deadline, so a dead or hung
node costs one timeout and the poll always ends. The two health answers are read through
the daemon's contract (`daemon/contract.py`): an answer that breaks it counts as none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from django.utils import timezone

from console.clusters.daemon_client import DaemonClient, DaemonError
from daemon.contract import (
    ClusterView,
    ContractError,
    NodeHealth,
    parse_cluster_view,
    parse_node_health,
)
from daemon.keepalive import NodeClient


@dataclass(frozen=True)
class Target:
    url: str
    name: str | None  # None: a seed URL whose node we have not identified yet


@dataclass
class NodePoll:
    target: Target
    view: NodeHealth | None = None  # /health/node
    queue: dict | None = None  # /queue
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.view is not None

    @property
    def name(self) -> str | None:
        return self.view.name if self.view is not None else self.target.name


@dataclass
class Summary:
    url: str
    cluster_view: ClusterView
    metrics: dict | None = None  # lifetime totals, for executions/s
    metrics_5m: dict | None = None  # p95, success rate, errors over the last 5 minutes


@dataclass
class Observation:
    at: datetime
    polls: list[NodePoll]
    summary: Summary | None
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)


# One client for every node, or (the collector) the client of each node's own pool.
Http = httpx.AsyncClient | Callable[[str], httpx.AsyncClient | NodeClient]


def client_for(http: Http, url: str) -> httpx.AsyncClient | NodeClient:
    return http if isinstance(http, httpx.AsyncClient) else http(url)


async def fetch(client: DaemonClient, http: Http, url: str, path: str, timeout_s: float) -> Any:
    """GET with a hard deadline over the whole call (httpx's timeouts are per phase)."""
    try:
        return await asyncio.wait_for(
            client.aget(url, path, client=client_for(http, url), timeout_s=timeout_s), timeout_s
        )
    except TimeoutError:
        raise DaemonError(f"{url}{path}: no answer within {timeout_s:g}s") from None


async def poll_node(client: DaemonClient, http: Http, target: Target, timeout_s: float) -> NodePoll:
    results = await asyncio.gather(
        fetch(client, http, target.url, "/health/node", timeout_s),
        fetch(client, http, target.url, "/queue", timeout_s),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, DaemonError):
            raise result  # a bug, not a node problem
    errors = [str(r) for r in results if isinstance(r, BaseException)]
    answer, queue = results
    view = None
    if not isinstance(answer, BaseException):
        try:
            view = parse_node_health(answer)
        except ContractError as err:
            errors.append(f"{target.url}: {err}")
    queue = queue if isinstance(queue, dict) else None
    return NodePoll(
        target, view=view, queue=queue if view else None, error="; ".join(errors) or None
    )


async def fetch_summary(
    client: DaemonClient,
    http: Http,
    url: str,
    timeout_s: float,
    window: dict | bool | None = True,
) -> Summary | None:
    """`window`: True to ask /metrics/5m too; else the 5-minute figures to reuse (a
    sample tick between full polls: a five-minute window barely moves in seconds)."""

    async def no_window() -> dict | None:
        return window if isinstance(window, dict) else None

    view, metrics, metrics_5m = await asyncio.gather(
        fetch(client, http, url, "/health/cluster", timeout_s),
        fetch(client, http, url, "/metrics", timeout_s),
        fetch(client, http, url, "/metrics/5m", timeout_s) if window is True else no_window(),
        return_exceptions=True,
    )
    if isinstance(view, BaseException):
        return None
    try:
        cluster_view = parse_cluster_view(view)
    except ContractError:
        return None  # like no answer: the caller asks another node
    return Summary(
        url=url,
        cluster_view=cluster_view,
        metrics=metrics if isinstance(metrics, dict) else None,
        metrics_5m=metrics_5m if isinstance(metrics_5m, dict) else None,
    )


def fallback_url(polls: list[NodePoll], tried: str | None) -> str | None:
    """A node that answered this round, the one that says it leads first."""
    answered = [p for p in polls if p.reachable and p.target.url != tried]
    answered.sort(key=lambda p: not (p.view is not None and p.view.is_leader))
    return answered[0].target.url if answered else None


async def observe(
    client: DaemonClient,
    http: Http,
    targets: list[Target],
    preferred_url: str | None,
    timeout_s: float,
) -> Observation:
    """Poll every target at once; the summary from the preferred node, or if it failed,
    from one that answered (a second, equally bounded round)."""
    started = time.monotonic()
    at = timezone.now()
    first_choice = preferred_url or (targets[0].url if targets else None)

    async def no_summary() -> None:
        return None

    summary_call = (
        fetch_summary(client, http, first_choice, timeout_s) if first_choice else no_summary()
    )
    *polls, summary = await asyncio.gather(
        *(poll_node(client, http, t, timeout_s) for t in targets), summary_call
    )
    if summary is None and (other := fallback_url(polls, first_choice)):
        summary = await fetch_summary(client, http, other, timeout_s)
    return Observation(
        at=at,
        polls=list(polls),
        summary=summary,
        duration_s=time.monotonic() - started,
        errors=[p.error for p in polls if p.error],
    )
