"""How daemonctl shows answers to people: aligned tables and 'key: value' blocks.

`--json` bypasses all of this and prints the API's answer as it came. The cluster
view is parsed by daemon.contract first, so the table shows what the daemon sends
and an answer that breaks the contract is a one-line error, not a wrong table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daemon.contract import ClusterView, ContractError, parse_cluster_view


def format_cell(value: Any) -> str:
    """Render one table cell: None as '-', booleans as yes/no, floats without noise."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Plain aligned columns separated by two spaces; numeric columns align right.

    A column is numeric when every non-empty cell is an int or float, so '-'
    placeholders for unknown values do not break the alignment.
    """
    raw = [list(row) for row in rows]
    cells = [[format_cell(v) for v in row] for row in raw]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [
        any(is_number(r[i]) for r in raw) and all(is_number(r[i]) or r[i] is None for r in raw)
        for i in range(len(headers))
    ]

    def line(texts: Sequence[str]) -> str:
        parts = [
            t.rjust(widths[i]) if numeric[i] else t.ljust(widths[i]) for i, t in enumerate(texts)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def format_fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """Vertical 'key: value' block for one record (a wide table would wrap)."""
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {format_cell(v)}" for k, v in pairs)


def human_bytes(n: Any) -> str:
    if not is_number(n):
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def fault_tolerance_text(tolerance: int) -> str:
    if tolerance <= 0:
        return "cannot lose any node"
    return f"can lose {plural(tolerance, 'node')}"


# ---- status ---------------------------------------------------------------------

STATUS_HEADERS = (
    "NAME",
    "ROLE",
    "REACHABLE",
    "TERM",
    "COMMIT",
    "APPLIED",
    "LAG(entries)",
    "LAG(ms)",
    "DRAINING",
    "VERSION",
)


def status_rows(view: ClusterView) -> list[list[Any]]:
    return [
        [
            f"* {m.name}" if m.name == view.leader else f"  {m.name}",
            m.role,
            m.reachable,
            m.term,
            m.commit_index,
            m.applied_index,
            m.lag_entries,
            m.lag_ms,
            m.draining,
            m.version,
        ]
        for m in view.members
    ]


def status_footer(view: ClusterView) -> str:
    quorum = "yes" if view.has_quorum else "NO (writes are blocked)"
    parts = [
        f"Cluster: {plural(view.cluster_size, 'member')}",
        f"{view.reachable_nodes} reachable",
        f"leader {view.leader or 'NONE'}",
        f"quorum {quorum} (needs {view.quorum_size})",
        fault_tolerance_text(view.fault_tolerance),
        f"max lag {format_cell(view.replication_lag_ms)} ms",
    ]
    return ", ".join(parts) + f"\n(answered by {view.node})"


def format_status(cluster: Any) -> str:
    """The /health/cluster answer as a table; ContractError if it breaks the contract."""
    view = cluster if isinstance(cluster, ClusterView) else parse_cluster_view(cluster)
    return format_table(STATUS_HEADERS, status_rows(view)) + "\n\n" + status_footer(view)


# ---- operations and executions ----------------------------------------------------


def handler_text(handler: Any, width: int = 48) -> str:
    # Truncated: a table row is for scanning; `ops get` shows the whole definition.
    if isinstance(handler, Mapping):
        extra = {k: v for k, v in handler.items() if k != "kind"}
        kind = str(handler.get("kind", "?"))
        text = f"{kind} {format_cell(extra)}" if extra else kind
    else:
        text = format_cell(handler)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_operations(ops: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for op in ops:
        retries = op.get("retries")
        rows.append(
            [
                op.get("id"),
                op.get("name"),
                handler_text(op.get("handler")),
                op.get("timeoutMs"),
                retries.get("max") if isinstance(retries, Mapping) else retries,
                op.get("cacheTtlMs"),
            ]
        )
    return format_table(("ID", "NAME", "HANDLER", "TIMEOUT(ms)", "RETRIES", "CACHE TTL(ms)"), rows)


def format_history(records: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            r.get("seq"),
            r.get("status"),
            r.get("duration"),
            r.get("node"),
            r.get("attempts"),
            r.get("cached"),
            r.get("finishedAt"),
            r.get("error"),
        ]
        for r in records
    ]
    headers = ("SEQ", "STATUS", "DURATION(ms)", "NODE", "ATTEMPTS", "CACHED", "FINISHED", "ERROR")
    return format_table(headers, rows)


def format_record(record: Any) -> str:
    if not isinstance(record, Mapping):
        return format_cell(record)
    return format_fields(record.items())


def format_generic_table(items: Sequence[Any]) -> str:
    """Table over the union of keys, in first-seen order (the queue's items)."""
    if not items:
        return "(none)"
    if not all(isinstance(i, Mapping) for i in items):
        return "\n".join(format_cell(i) for i in items)
    keys: list[str] = []
    for item in items:
        keys.extend(k for k in item if k not in keys)
    return format_table([k.upper() for k in keys], [[i.get(k) for k in keys] for i in items])


# ---- admin, metrics, queue ----------------------------------------------------------


def format_snapshot(data: Mapping[str, Any]) -> str:
    return "\n".join(
        [
            f"status:   {data.get('status', '-')}",
            f"journal:  {human_bytes(data.get('journalBytesBefore'))} -> "
            f"{human_bytes(data.get('journalBytesAfter'))} "
            f"({format_cell(data.get('journalBytesBefore'))} -> "
            f"{format_cell(data.get('journalBytesAfter'))} bytes)",
            f"data dir: {human_bytes(data.get('dataDirBytesBefore'))} -> "
            f"{human_bytes(data.get('dataDirBytesAfter'))} "
            f"({format_cell(data.get('dataDirBytesBefore'))} -> "
            f"{format_cell(data.get('dataDirBytesAfter'))} bytes)",
        ]
    )


def format_members(members: Any) -> str:
    """GET /admin/members: a list of {name, role, reachable, raftAddress, httpUrl}."""
    if not isinstance(members, list) or not all(isinstance(m, Mapping) for m in members):
        raise ContractError("/admin/members must be a list of JSON objects")
    rows = [
        [m.get("name"), m.get("role"), m.get("reachable"), m.get("raftAddress"), m.get("httpUrl")]
        for m in members
    ]
    return format_table(("NAME", "ROLE", "REACHABLE", "RAFT ADDRESS", "HTTP URL"), rows)


METRIC_FIELDS = (
    ("totalOperations", "total operations", ""),
    ("successRate", "success rate", " %"),
    ("errorCount", "errors", ""),
    ("avgDuration", "avg duration", " ms"),
    ("p95Duration", "p95 duration", " ms"),
    ("p99Duration", "p99 duration", " ms"),
    ("activeCount", "active", ""),
    ("cacheSize", "cache size", ""),
    ("cacheHitRate", "cache hit rate", ""),
)


def format_metrics(data: Mapping[str, Any]) -> str:
    pairs = [
        (label, f"{format_cell(data[key])}{unit}")
        for key, label, unit in METRIC_FIELDS
        if key in data
    ]
    health = data.get("clusterHealth")
    if isinstance(health, Mapping):
        pairs += [
            ("replication lag", f"{format_cell(health.get('replicationLag'))} ms"),
            ("failovers", health.get("failoverCount")),
            ("leader uptime", f"{format_cell(health.get('uptime'))} h"),
        ]
    if data.get("node"):
        pairs.append(("answered by", data["node"]))
    return format_fields(pairs)


def format_queue(data: Mapping[str, Any]) -> str:
    head = (
        f"active {format_cell(data.get('active'))}/{format_cell(data.get('maxConcurrent'))}, "
        f"queued {format_cell(data.get('queued'))}/{format_cell(data.get('capacity'))}, "
        f"draining {format_cell(data.get('draining'))}"
    )
    items = data.get("items") or []
    return head if not items else head + "\n\n" + format_generic_table(items)
