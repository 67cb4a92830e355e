"""One function per daemonctl subcommand: (client, parsed args, stdout) -> exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from daemon.contract import parse_cluster_view
from daemon.ctl.client import Client
from daemon.ctl.errors import EXIT_ERROR, EXIT_OK, CliError, UsageError
from daemon.ctl.formatting import (
    format_history,
    format_members,
    format_metrics,
    format_operations,
    format_queue,
    format_record,
    format_snapshot,
    format_status,
)

Output = TextIO
Command = Callable[[Client, argparse.Namespace, Output], int]


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
    view = parse_cluster_view(client.get("/health/cluster"))
    member = view.member(name)
    if member is None:
        known = ", ".join(m.name for m in view.members) or "none"
        raise CliError(f"no member named {name} (members: {known})")
    if not member.http_url:
        raise CliError(f"node {name} has no httpUrl in /health/cluster")
    return member.http_url.rstrip("/")


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
    emit(args, out, client.get("/admin/members"), format_members)
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


def cmd_metrics(client: Client, args: argparse.Namespace, out: Output) -> int:
    path = f"/metrics/{args.window}" if args.window else "/metrics"
    emit(args, out, client.get(path), format_metrics)
    return EXIT_OK


def cmd_queue(client: Client, args: argparse.Namespace, out: Output) -> int:
    emit(args, out, client.get("/queue"), format_queue)
    return EXIT_OK
