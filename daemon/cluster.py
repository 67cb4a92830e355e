"""`python -m daemon cluster`: N nodes on this machine, supervised in the foreground."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from daemon.config import ConfigError
from daemon.server import check_free

NAME_PREFIX = "unrdf-daemon-"
RAFT_PORT_OFFSET = 100


def _secret(path: Path, env_value: str | None) -> tuple[str, bool]:
    """(value, generated): env wins; else reuse the stored one; else make one."""
    if env_value:
        return env_value, False
    if path.exists():
        return path.read_text().strip(), False
    value = secrets.token_urlsafe(32)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value, True


def node_configs(args: argparse.Namespace, base: dict) -> list[dict]:
    names = [f"{NAME_PREFIX}{i}" for i in range(args.nodes)]
    peers = [
        {
            "name": name,
            "raftAddress": f"{args.host}:{args.http_port + RAFT_PORT_OFFSET + i}",
            "httpUrl": f"http://{args.host}:{args.http_port + i}",
        }
        for i, name in enumerate(names)
    ]
    configs = []
    for i, name in enumerate(names):
        cfg = json.loads(json.dumps(base))
        cfg.update(
            nodeName=name,
            dataDir=str(Path(args.data_dir, name).resolve()),
            peers=peers,
        )
        cfg.setdefault("http", {}).update(host=args.host, port=args.http_port + i)
        cfg.setdefault("raft", {}).update(bindAddress=peers[i]["raftAddress"])
        if args.no_auth:
            cfg.setdefault("auth", {})["disabled"] = True
        configs.append(cfg)
    return configs


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
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    configs = node_configs(args, base)
    try:
        for cfg in configs:
            check_free(f"{args.host}:{cfg['http']['port']}", "HTTP port (move with --http-port)")
            check_free(
                cfg["raft"]["bindAddress"], "Raft port (HTTP port + 100; move with --http-port)"
            )
    except ConfigError as exc:
        print(f"daemon cluster: {exc}", file=sys.stderr)
        return 2

    password, _ = _secret(data_dir / "raft.secret", os.environ.get("RAFT_PASSWORD"))
    token, generated = _secret(data_dir / "admin.token", os.environ.get("DAEMON_TOKEN"))
    env = {**os.environ, "RAFT_PASSWORD": password, "DAEMON_TOKEN": token}

    procs: list[tuple[str, subprocess.Popen]] = []
    for cfg in configs:
        node_dir = data_dir / cfg["nodeName"]
        node_dir.mkdir(exist_ok=True)
        config_path = node_dir / "daemon-config.json"
        config_path.write_text(json.dumps(cfg, indent=2) + "\n")
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(config_path)], env=env
        )
        (node_dir / "pid").write_text(f"{proc.pid}\n")
        procs.append((cfg["nodeName"], proc))

    print(f"daemon cluster: {len(procs)} nodes", flush=True)
    for cfg in configs:
        print(
            f"  {cfg['nodeName']}  http://{args.host}:{cfg['http']['port']}  raft {cfg['raft']['bindAddress']}"
        )
    if args.no_auth:
        print("  auth: DISABLED (--no-auth)")
    elif generated:
        print(f"  admin token (generated, stored in {data_dir / 'admin.token'}): {token}")
    else:
        print(
            "  admin token: from DAEMON_TOKEN"
            if os.environ.get("DAEMON_TOKEN")
            else f"  admin token: {data_dir / 'admin.token'}"
        )
    print("  Ctrl-C stops every node.", flush=True)
    return _supervise(procs)


def _supervise(procs: list[tuple[str, subprocess.Popen]]) -> int:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    reported: set[str] = set()
    while not stopping:
        for name, proc in procs:
            code = proc.poll()
            if code is not None and name not in reported:
                reported.add(name)
                print(
                    f"daemon cluster: {name} exited with code {code}", file=sys.stderr, flush=True
                )
        if len(reported) == len(procs):
            return 1
        time.sleep(0.2)
    for _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for _, proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("daemon cluster: all nodes stopped", flush=True)
    return 0
