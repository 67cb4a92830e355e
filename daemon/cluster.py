"""`python -m daemon cluster`: N nodes on this machine, watched in the foreground.

Built on daemon.localcluster: each node is a detached process with its own log file and
pid file under the data dir; this command follows their logs onto stderr and stops them
all on Ctrl-C. Another process can stop or restart one node meanwhile through the layout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from daemon.config import ConfigError
from daemon.localcluster import (
    Layout,
    LogFollower,
    NodeProcess,
    describe_exit,
    stop_nodes,
    stored_secret,
)
from daemon.server import check_free

STOP_GRACE_S = 15.0


def _layout(args: argparse.Namespace, base: dict) -> Layout:
    if args.no_auth:
        base.setdefault("auth", {})["disabled"] = True
    return Layout.sequential(Path(args.data_dir), args.nodes, args.http_port, args.host, base)


def _check_ports(layout: Layout) -> None:
    for spec in layout.nodes:
        check_free(f"{spec.host}:{spec.http_port}", "HTTP port (move with --http-port)")
        check_free(spec.raft_address, "Raft port (HTTP port + 100; move with --http-port)")


def _tokens(layout: Layout) -> tuple[dict[str, str], bool]:
    """(role -> token, generated): DAEMON_TOKEN wins; else the stored or a new admin.token.
    The operate and read tokens are taken from the environment when set."""
    token = os.environ.get("DAEMON_TOKEN")
    generated = False
    if not token:
        token, generated = stored_secret(layout.root / "admin.token")
    tokens = {"admin": token}
    for role, var in (("operate", "DAEMON_OPERATE_TOKEN"), ("read", "DAEMON_READ_TOKEN")):
        if os.environ.get(var):
            tokens[role] = os.environ[var]
    return tokens, generated


def run_cluster(args: argparse.Namespace) -> int:
    if not 1 <= args.nodes <= 9:
        print("daemon cluster: --nodes must be between 1 and 9", file=sys.stderr)
        return 2
    base: dict = {}
    if args.config:
        try:
            base = json.loads(Path(args.config).read_text())
        except (OSError, ValueError) as exc:
            print(f"daemon cluster: --config {args.config}: {exc}", file=sys.stderr)
            return 2
    layout = _layout(args, base)
    try:
        _check_ports(layout)
    except ConfigError as exc:
        print(f"daemon cluster: {exc}", file=sys.stderr)
        return 2

    layout.save()
    tokens, generated = _tokens(layout)
    layout.write_secrets(os.environ.get("RAFT_PASSWORD"), tokens)
    layout.write_configs()
    nodes = [NodeProcess(layout, spec.name) for spec in layout.nodes]
    follower = LogFollower(lambda name, line: print(line, file=sys.stderr, flush=True))
    for node in nodes:
        follower.follow(node.name, layout.log_path(node.name))
    follower.start()
    for node in nodes:
        node.start()

    print(f"daemon cluster: {len(nodes)} nodes", flush=True)
    for spec in layout.nodes:
        print(f"  {spec.name}  {spec.url}  raft {spec.raft_address}")
    if args.no_auth:
        print("  auth: DISABLED (--no-auth)")
    elif generated:
        print(
            f"  admin token (generated, stored in {layout.root / 'admin.token'}): {tokens['admin']}"
        )
    elif os.environ.get("DAEMON_TOKEN"):
        print("  admin token: from DAEMON_TOKEN")
    else:
        print(f"  admin token: {layout.root / 'admin.token'}")
    print(f"  logs: {layout.root}/<node>/node.log; Ctrl-C stops every node.", flush=True)
    try:
        return _supervise(nodes)
    finally:
        follower.stop()


def _supervise(nodes: list[NodeProcess]) -> int:
    stop_requested = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    down: set[str] = set()
    last_pid = {node.name: node.pid for node in nodes}
    while not stop_requested.wait(0.2):
        for node in nodes:
            pid, before = node.pid, last_pid[node.name]
            if pid is not None:
                last_pid[node.name] = pid
            if pid is not None and node.name in down:
                down.discard(node.name)
                print(f"daemon cluster: {node.name} is running again (pid {pid})", flush=True)
            elif pid is not None and pid != before:  # stopped and started between two looks
                print(f"daemon cluster: {node.name} restarted (pid {before} -> {pid})", flush=True)
            elif pid is None and node.name not in down:
                down.add(node.name)
                code = node.handle.exit_code()
                # Another process may have stopped it on purpose (and may start it again).
                how = describe_exit(code) if code is not None else "stopped"
                print(f"daemon cluster: {node.name} exited ({how})", file=sys.stderr, flush=True)
        if len(down) == len(nodes):
            return 1
    stop_nodes(nodes, STOP_GRACE_S)
    print("daemon cluster: all nodes stopped", flush=True)
    return 0
