"""daemonctl's commands for a LOCAL cluster (the one `make run` runs, or any layout root):
`node status|restart|stop|start|run-on`, `scale N`, and `code-version [N]` (any cluster).

The node commands act on processes on this machine through the layout in --cluster-dir
(the same orchestration the console's node manager uses: daemon/localcluster/lifecycle.py)
and print each step as it starts and ends; with --json, one JSON object per line for
each step and a final one for the outcome.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from daemon.contract import parse_code_version
from daemon.ctl.client import Client
from daemon.ctl.errors import EXIT_ERROR, EXIT_OK, CliError, UsageError
from daemon.localcluster import Layout, LayoutError
from daemon.localcluster.lifecycle import (
    restart_node,
    run_on_release,
    scale,
    start_node,
    status,
    stop_node,
)
from daemon.localcluster.manager import LifecycleError, LocalNodes, Outcome

Output = Any  # a text stream


def default_cluster_dir() -> Path:
    # What `make run` (manage.py up) uses: $CONSOLE_VAR_DIR/cluster, else ./var/cluster.
    return Path(os.environ.get("CONSOLE_VAR_DIR") or "var") / "cluster"


def default_releases_dir() -> Path:
    # Where the console installs releases: $RELEASES_DIR/envs, else ./var/releases/envs.
    var = Path(os.environ.get("CONSOLE_VAR_DIR") or "var")
    return Path(os.environ.get("RELEASES_DIR") or var / "releases") / "envs"


def _nodes(args: argparse.Namespace, out: Output) -> LocalNodes:
    root = Path(args.cluster_dir) if args.cluster_dir else default_cluster_dir()
    try:
        layout = Layout.load(root)
    except LayoutError as exc:
        raise CliError(f"{exc} (is --cluster-dir the directory `make run` uses?)") from None

    def say(event: dict[str, Any]) -> None:
        if args.json:
            out.write(json.dumps(event) + "\n")
        elif event["status"] != "running":
            mark = "ok  " if event["status"] == "done" else "FAIL"
            detail = f": {event['detail']}" if event["detail"] else ""
            out.write(f"{mark} {event['step']} ({event['elapsed_s']:.1f}s){detail}\n")
        out.flush()

    token = args.token if args.token is not None else os.environ.get("DAEMON_TOKEN")
    return LocalNodes(layout, token=token, say=say, timeout_s=args.wait)


def _run(args: argparse.Namespace, out: Output, action: Any, *extra: Any) -> int:
    nodes = _nodes(args, out)
    try:
        outcome: Outcome = action(nodes, *extra)
    except (LifecycleError, LayoutError) as exc:
        raise CliError(str(exc)) from None
    finally:
        nodes.close()
    if args.json:
        out.write(json.dumps({"outcome": outcome.as_json()}) + "\n")
    else:
        subject = f" {outcome.node}" if outcome.node else ""
        out.write(f"{outcome.action}{subject}: done in {outcome.elapsed_s:.1f}s\n")
    return EXIT_OK


def cmd_node_restart(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _run(args, out, restart_node, args.name)


def cmd_node_stop(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _run(args, out, stop_node, args.name)


def cmd_node_start(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _run(args, out, start_node, args.name)


def cmd_node_run_on(client: Client, args: argparse.Namespace, out: Output) -> int:
    release = None if args.release == "checkout" else args.release
    root = Path(args.releases_dir) if args.releases_dir else default_releases_dir()
    return _run(args, out, run_on_release, args.name, release, root)


def cmd_scale(client: Client, args: argparse.Namespace, out: Output) -> int:
    return _run(args, out, scale, args.count)


def cmd_node_status(client: Client, args: argparse.Namespace, out: Output) -> int:
    nodes = _nodes(args, out)
    try:
        rows = status(nodes)
    finally:
        nodes.close()
    if args.json:
        out.write(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    out.write(f"{'NODE':<18} {'PROC':<8} {'PID':>7} {'ROLE':<9} {'RELEASE':<16} CODE  URL\n")
    for r in rows:
        proc = "running" if r["running"] else "stopped"
        code = f"{r['codeVersion']}/{r['maxCodeVersion']}" if r["codeVersion"] is not None else "-"
        release = r["reportsRelease"] or r["release"] or "checkout"
        out.write(
            f"{r['name']:<18} {proc:<8} {r['pid'] or '-':>7} {r['role'] or '-':<9} "
            f"{release:<16} {code:<5} {r['url']}\n"
        )
    return EXIT_OK if all(r["running"] for r in rows) else EXIT_ERROR


def cmd_code_version(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.version is None:
        data = client.get("/admin/code-version")
    else:
        if args.version < 0:
            raise UsageError("the code version must not be negative")
        data = client.request("POST", "/admin/code-version", body={"version": args.version}).data
    answer = parse_code_version(data)
    if args.json:
        out.write(json.dumps(data, indent=2) + "\n")
    else:
        changed = f" (switched from {answer.previous})" if answer.changed else ""
        out.write(
            f"code version {answer.code_version}{changed}; this node supports up to "
            f"{answer.max_code_version}\n{answer.note}\n"
        )
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction, sub: Any, group: Any) -> None:
    """Register the commands; `sub` and `group` are parser.py's helpers."""

    def local(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--cluster-dir",
            metavar="DIR",
            help="the local cluster's layout root (default: $CONSOLE_VAR_DIR/cluster or "
            "var/cluster, what `make run` uses)",
        )
        parser.add_argument(
            "--wait", type=float, default=60.0, metavar="SECONDS",
            help="how long each step may wait for the cluster (default: 60)",
        )  # fmt: skip
        return parser

    node = group(commands, "node", "restart, stop, start or inspect a node of a LOCAL cluster")
    local(sub(node, "status", cmd_node_status, "every node's process, role and release"))
    for name, func, text in (
        ("restart", cmd_node_restart,
         "drain, hand leadership away, stop, start, wait until caught up, undrain"),
        ("stop", cmd_node_stop,
         "drain, hand leadership away, stop (refused when it would lose quorum)"),
        ("start", cmd_node_start, "start a stopped node, wait until caught up, undrain"),
    ):  # fmt: skip
        p = local(sub(node, name, func, text, f"example: daemonctl node {name} unrdf-daemon-1"))
        p.add_argument("name")
    p = local(
        sub(
            node, "run-on", cmd_node_run_on,
            "restart a node on an installed release ('checkout' for this tree); put back "
            "on its previous one if it does not come up",
            "example: daemonctl node run-on unrdf-daemon-1 r-2",
        )
    )  # fmt: skip
    p.add_argument("name")
    p.add_argument("release")
    p.add_argument(
        "--releases-dir", metavar="DIR",
        help="installed releases (default: $RELEASES_DIR/envs or var/releases/envs)",
    )  # fmt: skip
    p = local(
        sub(
            commands, "scale", cmd_scale,
            "grow or shrink a LOCAL cluster to N members, one node at a time (N >= 3)",
            "example: daemonctl scale 5",
        )
    )  # fmt: skip
    p.add_argument("count", type=int, metavar="N")
    p = sub(
        commands, "code-version", cmd_code_version,
        "show the state-machine code version, or switch the cluster to N (admin)",
        "Refused unless every member supports N. After a switch, rolling a node back to a "
        "release that does not support N is no longer safe.\nexample: daemonctl code-version 1",
    )  # fmt: skip
    p.add_argument("version", type=int, nargs="?", metavar="N")
