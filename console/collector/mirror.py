"""Mirror the cluster's execution feed (/executions?after=) into Execution rows.

The cursor (Cluster.feed_cursor) moves in the same transaction as the rows it covers,
and rows are inserted with ignore_conflicts on (cluster, seq), so a collector killed at
any point, restarted, or reading from another node after a leader change neither skips
nor repeats an execution. Seqs are assigned by the replicated state machine, so every
node numbers the feed alike. The one loss we accept is the daemon's bounded window
moving past our cursor while we were away: that is journaled as executions.gap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.db import transaction

from console.clusters.daemon_client import DaemonClient
from console.clusters.models import Cluster, Execution
from console.events import journal
from daemon.keepalive import NodeClient

log = logging.getLogger("console.collector")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class MirrorResult:
    count: int = 0
    last_seq: int = 0
    gaps: int = 0
    cursor: int | None = None  # where the feed cursor stands after the call, if known


def parse_time(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def execution_row(cluster_id: int, record: dict) -> Execution:
    # Defensive conversion: a malformed field must not drop the row (that would be a
    # silent gap); it is stored with a neutral value instead.
    return Execution(
        cluster_id=cluster_id,
        seq=int(record["seq"]),
        execution_id=str(record.get("id") or f"seq-{record['seq']}")[:64],
        operation_id=str(record.get("operationId") or "")[:128],
        status=str(record.get("status") or "unknown")[:16],
        duration_ms=float(record.get("duration") or 0.0),
        node_name=str(record.get("node") or "")[:63],
        started_at=parse_time(record.get("startedAt")),
        finished_at=parse_time(record.get("finishedAt")),
        attempts=int(record.get("attempts") or 1),
        cached=bool(record.get("cached")),
        error=str(record.get("error") or ""),
    )


def save_page(cluster_id: int, after: int, page: dict) -> tuple[int, int] | None:
    """Store one page read with ?after=`after`; returns (stored, new cursor), or None if
    the cursor moved meanwhile (another collector got there first: nothing to do)."""
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().get(pk=cluster_id)
        saved = store_page(cluster, after, page)
        if saved is not None and saved[1] > after:
            Cluster.objects.filter(pk=cluster_id).update(feed_cursor=saved[1])
        return saved


def store_page(cluster: Cluster, after: int, page: dict) -> tuple[int, int] | None:
    """save_page's work inside the caller's transaction, on a row it locked (select for
    update) and read `feed_cursor` from: the rows and a gap event are written; moving
    the cursor to the returned one is left to the caller, in the same transaction (the
    collector's sample tick writes it with the row's other columns, in one UPDATE)."""
    if cluster.feed_cursor != after:
        return None
    records = [r for r in page.get("executions") or [] if int(r.get("seq", 0)) > after]
    next_after = int(page.get("nextAfter") or after)
    if records:
        next_after = max(next_after, int(records[-1]["seq"]))
    if page.get("gap"):
        oldest = int(page.get("oldestSeq") or after + 1)
        journal.append(
            "executions.gap",
            actor="collector",
            cluster=cluster,
            **{"from": after + 1},
            to=oldest - 1,
        )
    if records:
        Execution.objects.bulk_create(
            [execution_row(cluster.pk, r) for r in records], ignore_conflicts=True
        )
    return len(records), max(next_after, after)


def page_done(page: dict, after: int) -> bool:
    """Whether the feed holds nothing after this page (else read the next one)."""
    return not page.get("executions") or after >= int(page.get("latestSeq") or 0)


def read_cursor(cluster_id: int) -> int:
    return Cluster.objects.values_list("feed_cursor", flat=True).get(pk=cluster_id)


def journal_mirrored(cluster: Cluster | int, result: MirrorResult) -> None:
    if result.count > 0:
        if not isinstance(cluster, Cluster):
            cluster = Cluster.objects.get(pk=cluster)
        journal.append(
            "executions.mirrored",
            actor="collector",
            cluster=cluster,
            count=result.count,
            last_seq=result.last_seq,
        )


async def mirror_feed(
    client: DaemonClient,
    http: httpx.AsyncClient | NodeClient,
    cluster: Cluster | int,
    url: str,
    *,
    page_limit: int,
    max_pages: int,
    timeout_s: float,
    cursor: int | None = None,
) -> MirrorResult:
    """Page from our cursor up to the node's latest seq (at most max_pages a call, so a
    long backlog is caught up over a few ticks without starving node polling).

    `cursor`: where the last call left it (result.cursor), to save reading it; if
    another writer moved it meanwhile, save_page refuses the page under its row lock
    and result.cursor comes back None (read it next time)."""
    cluster_id = cluster.pk if isinstance(cluster, Cluster) else cluster
    result = MirrorResult()
    after = cursor if cursor is not None else await sync_to_async(read_cursor)(cluster_id)
    for _ in range(max_pages):
        page = await client.aget(
            url,
            "/executions",
            params={"after": after, "limit": page_limit},
            client=http,
            timeout_s=timeout_s,
        )
        saved = await sync_to_async(save_page)(cluster_id, after, page)
        if saved is None:
            after = None
            break
        stored, after = saved
        result.count += stored
        result.last_seq = after
        result.gaps += 1 if page.get("gap") else 0
        if page_done(page, after):
            break
    result.cursor = after
    await sync_to_async(journal_mirrored)(cluster, result)
    return result
