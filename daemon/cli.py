"""daemonctl: operate a daemon cluster through any node's HTTP API.

In the style of patronictl/etcdctl: one process per command, human tables by
default, ``--json`` for scripts, one-line errors on stderr and meaningful exit
codes (0 ok, 1 API error or no node reachable, 2 usage error).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

import httpx

PROG = "daemonctl"
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 30.0
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
WINDOWS = ("24h", "7d", "month")


class CliError(Exception):
    """A failure reported as one line on stderr with an exit code (never a traceback)."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


# ------------------------------------------------------------------------ formatting


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


def _is_number(value: Any) -> bool:
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
        any(_is_number(r[i]) for r in raw) and all(_is_number(r[i]) or r[i] is None for r in raw)
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
    if not _is_number(n):
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - loop always returns


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def fault_tolerance_text(tolerance: int | None) -> str:
    if tolerance is None:
        return "fault tolerance unknown"
    if tolerance <= 0:
        return "cannot lose any node"
    return f"can lose {plural(tolerance, 'node')}"


def status_rows(cluster: Mapping[str, Any]) -> list[list[Any]]:
    leader = cluster.get("leader")
    rows = []
    for node in cluster.get("nodes") or []:
        name = node.get("name", "?")
        reachable = node.get("reachable")
        # Older nodes may not report per-node term/commit: the answering node's values are
        # the best estimate for reachable members and unknown for unreachable ones.
        term = node.get("term", cluster.get("term") if reachable else None)
        commit = node.get("commitIndex", node.get("matchIndex"))
        rows.append(
            [
                f"* {name}" if name == leader else f"  {name}",
                node.get("role"),
                reachable,
                term,
                commit,
                node.get("appliedIndex"),
                node.get("lagEntries"),
                node.get("lagMs"),
                node.get("draining"),
                node.get("version"),
            ]
        )
    return rows


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


def status_footer(cluster: Mapping[str, Any]) -> str:
    nodes = cluster.get("nodes") or []
    size = cluster.get("clusterSize", len(nodes))
    reachable = cluster.get("reachableNodes", sum(1 for n in nodes if n.get("reachable")))
    quorum_needed = cluster.get("quorumSize", size // 2 + 1 if _is_number(size) else None)
    tolerance = cluster.get("faultTolerance")
    if tolerance is None and _is_number(size) and _is_number(reachable):
        tolerance = max(0, reachable - (size // 2 + 1))
    quorum = "yes" if cluster.get("hasQuorum") else "NO (writes are blocked)"
    parts = [
        f"Cluster: {plural(size, 'member') if _is_number(size) else '? members'}",
        f"{reachable} reachable",
        f"leader {cluster.get('leader') or 'NONE'}",
        f"quorum {quorum}" + (f" (needs {quorum_needed})" if quorum_needed else ""),
        fault_tolerance_text(tolerance),
        f"max lag {format_cell(cluster.get('replicationLag'))} ms",
    ]
    footer = ", ".join(parts)
    if cluster.get("node"):
        footer += f"\n(answered by {cluster['node']})"
    return footer


def format_status(cluster: Mapping[str, Any]) -> str:
    return format_table(STATUS_HEADERS, status_rows(cluster)) + "\n\n" + status_footer(cluster)


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


def format_generic_table(items: Sequence[Any]) -> str:
    """Table over the union of keys, in first-seen order (for shapes we do not pin down)."""
    if not items:
        return "(none)"
    if not all(isinstance(i, Mapping) for i in items):
        return "\n".join(format_cell(i) for i in items)
    keys: list[str] = []
    for item in items:
        keys.extend(k for k in item if k not in keys)
    return format_table([k.upper() for k in keys], [[i.get(k) for k in keys] for i in items])


# ------------------------------------------------------------------------ HTTP client


def _reason(exc: httpx.HTTPError) -> str:
    """A short human reason for a transport error (httpx's text is long and nested)."""
    text = str(exc) or exc.__class__.__name__
    lowered = text.lower()
    if "certificate" in lowered or "ssl" in lowered:
        return "TLS error: " + text.splitlines()[0] + " (use --cacert or --insecure)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host"
    return text.splitlines()[0]


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and body.get("error"):
        message = str(body["error"])
    else:
        first_line = response.text.strip().splitlines()[0] if response.text.strip() else ""
        message = first_line[:200] or response.reason_phrase or "request failed"
    hints = []
    if response.status_code == 401:
        hints.append("set --token or DAEMON_TOKEN")
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        hints.append(f"retry after {retry_after}s")
    suffix = f"; {'; '.join(hints)}" if hints else ""
    return f"{message} (HTTP {response.status_code} from {response.request.url}{suffix})"


@dataclass
class Reply:
    status: int
    data: Any
    url: str


class Client:
    """Sends one request to the first node that answers.

    Fail-over only happens when the request provably never reached a node
    (connect errors), or for reads: re-sending a POST whose answer was lost
    (read timeout) could run an execution twice.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        verify: bool | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.urls = list(urls)
        headers = {"Accept": "application/json", "User-Agent": PROG}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            headers=headers, timeout=timeout, verify=verify, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        urls: Sequence[str] | None = None,
    ) -> Reply:
        failures: list[str] = []
        for base in urls or self.urls:
            try:
                response = self._http.request(method, base + path, json=body, params=params or None)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failures.append(f"{base} ({_reason(exc)})")
                continue
            except httpx.HTTPError as exc:
                if method == "GET":
                    failures.append(f"{base} ({_reason(exc)})")
                    continue
                raise CliError(
                    f"{method} {base}{path}: {_reason(exc)}; the request may still have "
                    "taken effect: check before retrying"
                ) from None
            return self._reply(response, base)
        raise CliError("no node answered at " + ", ".join(failures))

    @staticmethod
    def _reply(response: httpx.Response, base: str) -> Reply:
        if response.status_code >= 400:
            raise CliError(_error_message(response))
        if not response.content:
            return Reply(response.status_code, None, base)
        try:
            data = response.json()
        except ValueError:
            raise CliError(f"unexpected non-JSON answer from {response.request.url}") from None
        return Reply(response.status_code, data, base)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).data


# --------------------------------------------------------------------------- helpers


def split_urls(values: Sequence[str] | None) -> list[str]:
    """Flatten repeated and comma-separated --url values; drop duplicates, keep order."""
    raw = values if values else [os.environ.get("DAEMON_URL") or DEFAULT_URL]
    urls: list[str] = []
    for value in raw:
        for part in value.split(","):
            url = part.strip().rstrip("/")
            if not url:
                continue
            if "://" not in url:
                url = "http://" + url
            if url not in urls:
                urls.append(url)
    if not urls:
        raise UsageError("--url is empty")
    return urls


def parse_json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None


def parse_handler(spec: str) -> Any:
    """A JSON object becomes a declared handler; anything else is the seed's string form."""
    try:
        value = json.loads(spec)
    except ValueError:
        return spec
    return value if isinstance(value, (dict, str)) else spec


def load_definition_file(path: str) -> dict[str, Any]:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    value = parse_json_arg(text, path)
    if not isinstance(value, dict):
        raise UsageError(f"{path} must hold a JSON object")
    return value


def build_definition(args: argparse.Namespace) -> dict[str, Any]:
    definition = load_definition_file(args.file) if args.file else {}
    definition["id"] = args.id
    if args.name is not None:
        definition["name"] = args.name
    if args.handler is not None:
        definition["handler"] = parse_handler(args.handler)
    missing = [field for field in ("name", "handler") if field not in definition]
    if missing:
        raise UsageError(f"ops define: missing {' and '.join('--' + m for m in missing)}")
    if args.timeout_ms is not None:
        definition["timeoutMs"] = args.timeout_ms
    if args.cache_ttl_ms is not None:
        definition["cacheTtlMs"] = args.cache_ttl_ms
    if args.description is not None:
        definition["description"] = args.description
    if args.retries is not None or args.backoff_ms is not None:
        retries = dict(definition.get("retries") or {})
        if args.retries is not None:
            retries["max"] = args.retries
        if args.backoff_ms is not None:
            retries["backoffMs"] = args.backoff_ms
        definition["retries"] = retries
    return definition


def node_url(client: Client, name: str) -> str:
    """Resolve a member's own HTTP URL, so a per-node action reaches that node."""
    cluster = client.get("/health/cluster")
    nodes = cluster.get("nodes", []) if isinstance(cluster, Mapping) else []
    for node in nodes:
        if node.get("name") == name:
            if not node.get("httpUrl"):
                raise CliError(f"node {name} has no httpUrl in /health/cluster")
            return str(node["httpUrl"]).rstrip("/")
    known = ", ".join(str(n.get("name")) for n in nodes) or "none"
    raise CliError(f"no member named {name} (members: {known})")


def members_of(data: Any) -> list[Any]:
    # The members endpoint may answer a list, {"members": [...]} or {name: entry}.
    if isinstance(data, Mapping) and isinstance(data.get("members"), list):
        data = data["members"]
    if isinstance(data, Mapping):
        return [
            {"name": k, **v} if isinstance(v, Mapping) else {"name": k} for k, v in data.items()
        ]
    return list(data) if isinstance(data, list) else [data]


# -------------------------------------------------------------------------- commands

Output = TextIO


def emit(args: argparse.Namespace, out: Output, data: Any, human: Callable[[Any], str]) -> None:
    if args.json:
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        out.write(human(data).rstrip("\n") + "\n")


def cmd_status(client: Client, args: argparse.Namespace, out: Output) -> int:
    emit(args, out, client.get("/health/cluster"), format_status)
    return EXIT_OK


def cmd_ops_list(client: Client, args: argparse.Namespace, out: Output) -> int:
    emit(args, out, client.get("/operations"), format_operations)
    return EXIT_OK


def cmd_ops_get(client: Client, args: argparse.Namespace, out: Output) -> int:
    data = client.get(f"/operations/{args.id}")
    emit(args, out, data, lambda d: json.dumps(d, indent=2))
    return EXIT_OK


def cmd_ops_define(client: Client, args: argparse.Namespace, out: Output) -> int:
    definition = build_definition(args)
    reply = client.request("POST", "/operations", body=definition)
    verb = "created" if reply.status == 201 else "updated"
    emit(args, out, reply.data, lambda d: f"{verb} operation {args.id}")
    return EXIT_OK


def cmd_ops_delete(client: Client, args: argparse.Namespace, out: Output) -> int:
    data = client.request("DELETE", f"/operations/{args.id}").data
    emit(args, out, data, lambda d: f"deleted operation {args.id}")
    return EXIT_OK


def format_record(record: Any) -> str:
    if not isinstance(record, Mapping):
        return format_cell(record)
    return format_fields(record.items())


def cmd_ops_exec(client: Client, args: argparse.Namespace, out: Output) -> int:
    body = None
    if args.params is not None:
        params = parse_json_arg(args.params, "--params")
        if not isinstance(params, dict):
            raise UsageError("--params must be a JSON object")
        body = {"params": params}
    record = client.request("POST", f"/execute/{args.id}", body=body).data
    emit(args, out, record, format_record)
    ok = isinstance(record, Mapping) and record.get("status") == "success"
    return EXIT_OK if ok else EXIT_ERROR


def cmd_ops_history(client: Client, args: argparse.Namespace, out: Output) -> int:
    data = client.get(f"/operations/{args.id}/history", params={"limit": args.limit})
    emit(args, out, data, format_history)
    return EXIT_OK


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


def cmd_snapshot(client: Client, args: argparse.Namespace, out: Output) -> int:
    emit(args, out, client.request("POST", "/admin/snapshot").data, format_snapshot)
    return EXIT_OK


def _drain(client: Client, args: argparse.Namespace, out: Output, action: str) -> int:
    urls = [node_url(client, args.node)] if args.node else None
    data = client.request("POST", f"/admin/{action}", urls=urls).data

    def human(d: Any) -> str:
        node = d.get("node", args.node or "?") if isinstance(d, Mapping) else args.node
        draining = d.get("draining") if isinstance(d, Mapping) else None
        state = {True: "draining", False: "accepting work"}.get(draining, "unknown")
        return f"{node}: {state}"

    emit(args, out, data, human)
    return EXIT_OK


def cmd_drain(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _drain(client, args, out, "drain")


def cmd_undrain(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _drain(client, args, out, "undrain")


def cmd_transfer_leader(client: Client, args: argparse.Namespace, out: Output) -> int:
    body = {"target": args.to} if args.to else {}
    data = client.request("POST", "/admin/transfer-leader", body=body).data
    emit(args, out, data, lambda d: f"leader: {d.get('leader') if isinstance(d, Mapping) else d}")
    return EXIT_OK


def cmd_members_list(client: Client, args: argparse.Namespace, out: Output) -> int:
    def human(d: Any) -> str:
        members = members_of(d)
        if members and all(isinstance(m, Mapping) for m in members):
            rows = [[m.get("name"), m.get("raftAddress"), m.get("httpUrl")] for m in members]
            return format_table(("NAME", "RAFT ADDRESS", "HTTP URL"), rows)
        return format_generic_table(members)

    emit(args, out, client.get("/admin/members"), human)
    return EXIT_OK


def cmd_members_add(client: Client, args: argparse.Namespace, out: Output) -> int:
    host, _, port = args.raft.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--raft must be HOST:PORT, got {args.raft!r}")
    if not args.http.startswith(("http://", "https://")):
        raise UsageError(f"--http must be an http(s) URL, got {args.http!r}")
    body = {"name": args.name, "raftAddress": args.raft, "httpUrl": args.http.rstrip("/")}
    data = client.request("POST", "/admin/members", body=body).data
    emit(args, out, data, lambda d: f"added member {args.name}")
    return EXIT_OK


def cmd_members_remove(client: Client, args: argparse.Namespace, out: Output) -> int:
    data = client.request("DELETE", f"/admin/members/{args.name}").data
    emit(args, out, data, lambda d: f"removed member {args.name}")
    return EXIT_OK


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


def cmd_metrics(client: Client, args: argparse.Namespace, out: Output) -> int:
    path = f"/metrics/{args.window}" if args.window else "/metrics"
    emit(args, out, client.get(path), format_metrics)
    return EXIT_OK


def format_queue(data: Mapping[str, Any]) -> str:
    head = (
        f"active {format_cell(data.get('active'))}/{format_cell(data.get('maxConcurrent'))}, "
        f"queued {format_cell(data.get('queued'))}/{format_cell(data.get('capacity'))}, "
        f"draining {format_cell(data.get('draining'))}"
    )
    items = data.get("items") or []
    return head if not items else head + "\n\n" + format_generic_table(items)


def cmd_queue(client: Client, args: argparse.Namespace, out: Output) -> int:
    emit(args, out, client.get("/queue"), format_queue)
    return EXIT_OK


# ---------------------------------------------------------------------------- parser

MAIN_EPILOG = """\
environment:
  DAEMON_URL     default for --url (comma-separated list allowed)
  DAEMON_TOKEN   default for --token
  DAEMON_CACERT  default for --cacert

exit codes: 0 ok, 1 API error / no node answered / execution not successful, 2 usage

examples:
  daemonctl status
  daemonctl --url http://unrdf-daemon-0:8080,http://unrdf-daemon-1:8080 status
  daemonctl ops define test-op --name "Test Operation" --handler '{"kind": "noop"}'
  daemonctl ops exec test-op --params '{"n": 1}' && echo ok
  daemonctl --json metrics --window 7d | jq .successRate
  daemonctl drain --node unrdf-daemon-2
  daemonctl members remove unrdf-daemon-3
"""

DEFINE_EPILOG = """\
SPEC is a JSON object naming a declared handler kind, e.g. '{"kind": "sleep", "ms": 50}',
or any other text, which the daemon stores as a log handler printing that text
(the runbook's form: --handler 'console.log("success")'; it is never evaluated).

examples:
  daemonctl ops define test-op --name "Test Operation" --handler 'console.log("success")'
  daemonctl ops define fetch --name Fetch --handler '{"kind": "noop"}' \\
      --timeout-ms 5000 --retries 3 --backoff-ms 200 --cache-ttl-ms 60000
  daemonctl ops define test-op --file def.json     # flags given as well override the file
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line instead of printing usage text."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Registered on the top-level parser (real defaults) and again on every subcommand
    # with SUPPRESS defaults, so `daemonctl status --json` works like `daemonctl --json
    # status` without the subcommand silently resetting values given before it.
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--url",
        action="append",
        default=default(None),
        metavar="URL",
        help="node API base URL; repeat or comma-separate to try several in order "
        f"(default: $DAEMON_URL or {DEFAULT_URL})",
    )
    group.add_argument(
        "--token",
        default=default(None),
        help="bearer token (default: $DAEMON_TOKEN)",
    )
    group.add_argument(
        "--json", action="store_true", default=default(False), help="print the API's JSON"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default(DEFAULT_TIMEOUT_S),
        metavar="SECONDS",
        help=f"per-request timeout (default: {DEFAULT_TIMEOUT_S:g}; raise it for slow ops exec)",
    )
    tls = group.add_mutually_exclusive_group()
    tls.add_argument(
        "--insecure",
        action="store_true",
        default=default(False),
        help="do not verify TLS certificates",
    )
    tls.add_argument(
        "--cacert",
        default=default(None),
        metavar="FILE",
        help="CA bundle to verify the nodes' TLS certificates (default: $DAEMON_CACERT)",
    )


def _sub(
    subparsers: argparse._SubParsersAction,
    name: str,
    func: Callable[[Client, argparse.Namespace, Output], int],
    help_text: str,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, suppress=True)
    parser.set_defaults(func=func)
    return parser


def _group(
    subparsers: argparse._SubParsersAction, name: str, help_text: str
) -> argparse._SubParsersAction:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Operate a Raft-replicated daemon cluster through any node's HTTP API.",
        epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _sub(
        commands,
        "status",
        cmd_status,
        "show every member: role, reachability, Raft indexes, lag, drain state",
        "The leader is marked with '*'. Example: daemonctl status",
    )

    ops = _group(commands, "ops", "list, define, run and inspect operations")
    _sub(ops, "list", cmd_ops_list, "list operation definitions")
    p = _sub(ops, "get", cmd_ops_get, "show one operation definition")
    p.add_argument("id")
    p = _sub(ops, "define", cmd_ops_define, "create or update an operation", DEFINE_EPILOG)
    p.add_argument("id")
    p.add_argument("--name")
    p.add_argument("--handler", metavar="SPEC", help="JSON object or plain string (see below)")
    p.add_argument("--description")
    p.add_argument("--timeout-ms", type=int, metavar="MS")
    p.add_argument("--retries", type=int, metavar="N", help="retry a failed attempt N times")
    p.add_argument("--backoff-ms", type=int, metavar="MS", help="first retry delay")
    p.add_argument("--cache-ttl-ms", type=int, metavar="MS", help="cache results this long")
    p.add_argument("--file", metavar="FILE", help="definition as a JSON object ('-' = stdin)")
    p = _sub(ops, "delete", cmd_ops_delete, "delete an operation definition")
    p.add_argument("id")
    p = _sub(
        ops,
        "exec",
        cmd_ops_exec,
        "run an operation; exits 1 unless the execution succeeded",
        "example: daemonctl ops exec test-op --params '{\"n\": 1}'",
    )
    p.add_argument("id")
    p.add_argument("--params", metavar="JSON", help="JSON object passed to the handler")
    p = _sub(ops, "history", cmd_ops_history, "recent executions of an operation, oldest first")
    p.add_argument("id")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="(default: 20)")

    _sub(
        commands,
        "snapshot",
        cmd_snapshot,
        "compact the Raft log and rewrite the journal; prints sizes before and after",
    )
    for name, func, verb in (
        ("drain", cmd_drain, "stop a node taking new executions (running ones finish)"),
        ("undrain", cmd_undrain, "let a drained node take executions again"),
    ):
        p = _sub(commands, name, func, verb, f"example: daemonctl {name} --node unrdf-daemon-2")
        p.add_argument(
            "--node",
            metavar="NAME",
            help="member to act on (default: the node that answers --url)",
        )
    p = _sub(
        commands,
        "transfer-leader",
        cmd_transfer_leader,
        "hand Raft leadership to another member",
        "example: daemonctl transfer-leader --to unrdf-daemon-1",
    )
    p.add_argument("--to", metavar="NAME", help="target member (default: any caught-up one)")

    members = _group(commands, "members", "list, add or remove Raft members")
    _sub(members, "list", cmd_members_list, "list members")
    p = _sub(
        members,
        "add",
        cmd_members_add,
        "add a member",
        "example: daemonctl members add unrdf-daemon-3 --raft 10.0.0.13:8081 "
        "--http http://10.0.0.13:8080",
    )
    p.add_argument("name")
    p.add_argument("--raft", required=True, metavar="HOST:PORT", help="its Raft address")
    p.add_argument("--http", required=True, metavar="URL", help="its HTTP API base URL")
    p = _sub(members, "remove", cmd_members_remove, "remove a member (refused if quorum is lost)")
    p.add_argument("name")

    p = _sub(
        commands,
        "metrics",
        cmd_metrics,
        "cluster-wide execution metrics (lifetime, or over a window)",
        "example: daemonctl metrics --window 7d",
    )
    p.add_argument("--window", choices=WINDOWS, help="24h, 7d or month (31 days)")
    _sub(commands, "queue", cmd_queue, "this node's executor: active, queued, capacity, items")
    return parser


def _verify(args: argparse.Namespace) -> bool | ssl.SSLContext:
    if args.insecure:
        return False
    cacert = args.cacert or os.environ.get("DAEMON_CACERT")
    if not cacert:
        return True
    try:
        return ssl.create_default_context(cafile=cacert)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load --cacert {cacert}: {exc}") from None


def make_client(args: argparse.Namespace, transport: httpx.BaseTransport | None = None) -> Client:
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    return Client(
        split_urls(args.url),
        token=args.token if args.token is not None else os.environ.get("DAEMON_TOKEN"),
        timeout=args.timeout,
        verify=_verify(args),
        transport=transport,
    )


def main(
    argv: list[str] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run daemonctl; returns the exit code. ``transport`` lets tests fake the nodes."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = build_parser().parse_args(argv)
        client = make_client(args, transport)
        try:
            return args.func(client, args, out)
        finally:
            client.close()
    except CliError as exc:
        err.write(f"{PROG}: {exc.message}\n")
        return exc.code
    except SystemExit as exc:  # --help (0); argparse errors are UsageError above
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        # `daemonctl ops list | head` closing the pipe early is not an error worth a trace.
        return EXIT_OK
    except Exception as exc:  # a bug or an unexpected answer shape: still one line
        err.write(f"{PROG}: internal error: {exc.__class__.__name__}: {exc}\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
