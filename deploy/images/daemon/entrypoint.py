"""The daemon image's entrypoint: refuse to run a pod that is not a configured member.

A StatefulSet scaled from 3 to 5 replicas starts pods unrdf-daemon-3 and -4; started
blindly they would ask to join (or, with a fresh journal, form a cluster of their own).
Membership changes go through the runbook's procedure instead (POST /admin/members,
then the ConfigMap's `peers`, then the replica count; deploy/README.md "Scaling"), so
a pod whose name is not in the config's `peers` exits with code 2 and one line saying
so, and the StatefulSet shows it in CrashLoopBackOff rather than silently adding it.

Then it execs `python -m daemon run --config $DAEMON_CONFIG`; `--check` only loads the
config the way the daemon will (daemon/config.py) and prints the node's identity.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULT_CONFIG = "/etc/daemon/daemon-config.json"


def node_name_of(data: object, env: dict[str, str]) -> str:
    """NODE_NAME (the pod's name, from the downward API), else the file's nodeName,
    else the hostname (a StatefulSet pod's hostname is its name)."""
    from_file = data.get("nodeName") if isinstance(data, dict) else None
    return env.get("NODE_NAME") or from_file or env.get("HOSTNAME", "")


def member_error(config_path: str, env: dict[str, str]) -> str | None:
    """Why this pod must not start, or None when it is a configured member."""
    try:
        data = json.loads(Path(config_path).read_text())
    except (OSError, ValueError) as exc:
        return f"cannot read {config_path}: {exc}"
    node_name = node_name_of(data, env)
    peers = data.get("peers") if isinstance(data, dict) else None
    if not peers:
        return None  # a single node, or membership given some other way: the daemon decides
    names = [p.get("name") for p in peers if isinstance(p, dict)]
    if node_name not in names:
        return (
            f"{node_name or '(no NODE_NAME)'} is not a member listed in {config_path} "
            f"(peers: {', '.join(map(str, names))}); scaling the StatefulSet does not add "
            "Raft members: add it with POST /admin/members and to the ConfigMap's peers first"
        )
    return None


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    config_path = env.get("DAEMON_CONFIG", DEFAULT_CONFIG)
    error = member_error(config_path, env)
    if error:
        print(f"daemon-entrypoint: {error}", file=sys.stderr)
        return 2
    if not env.get("NODE_NAME"):
        data = json.loads(Path(config_path).read_text())
        os.environ["NODE_NAME"] = node_name_of(data, env)
    if argv[:1] == ["--check"]:
        from daemon.config import ConfigError, load_config

        try:
            config = load_config(config_path)
        except ConfigError as exc:
            print(f"daemon-entrypoint: {exc}", file=sys.stderr)
            return 2
        print(f"{config.node_name} raft {config.raft_bind} advertised as {config.raft_advertise}")
        return 0
    args = [sys.executable, "-m", "daemon", *argv, "run", "--config", config_path]
    os.execv(sys.executable, args)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
