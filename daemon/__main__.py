"""python -m daemon run --config daemon-config.json | python -m daemon cluster --nodes 3 ..."""

from __future__ import annotations

import argparse
import logging
import sys

from daemon import __version__


def _setup_logging(level: str, node: str = "") -> None:
    prefix = f"[{node}] " if node else ""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # pysyncobj logs every reconnect attempt at warning; that is noise while a peer is down.
    logging.getLogger("pysyncobj").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m daemon",
        description="A node of the Raft-replicated daemon cluster.",
        epilog="See docs/daemon-api.md for the HTTP API and README.md for config keys.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run_p = sub.add_parser(
        "run",
        help="run one node (as a StatefulSet pod does)",
        description="Run one node. Environment variables override the file (CACHE_MAX_SIZE, "
        "MAX_CONCURRENT, QUEUE_SIZE, NODE_NAME, DATA_DIR, HTTP_PORT, RAFT_BIND, RAFT_PASSWORD, "
        "DAEMON_TOKEN, ...). A bad config exits 2 with a one-line error naming the key.",
    )
    run_p.add_argument("--config", help="path to daemon-config.json (optional if env sets all)")

    cluster_p = sub.add_parser(
        "cluster",
        help="run an N-node cluster on this machine, in the foreground",
        description="Start N nodes on loopback. Node i serves HTTP on HTTP_PORT+i and Raft on "
        "HTTP_PORT+100+i. The admin token comes from DAEMON_TOKEN, or is generated, stored in "
        "the data dir and printed. Ctrl-C stops every node.",
    )
    cluster_p.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    cluster_p.add_argument("--data-dir", required=True, help="directory for every node's data")
    cluster_p.add_argument("--http-port", type=int, default=8080, help="first node's HTTP port")
    cluster_p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    cluster_p.add_argument(
        "--no-auth", action="store_true", help="disable HTTP auth (local development only)"
    )
    cluster_p.add_argument(
        "--config", help="base daemon-config.json merged into each node's generated config"
    )

    from daemon.restore import add_parser as add_restore_parser

    add_restore_parser(sub)

    args = parser.parse_args(argv)
    if args.command == "run":
        from daemon.config import ConfigError, load_config
        from daemon.server import run

        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"daemon: {exc}", file=sys.stderr)
            return 2
        _setup_logging(args.log_level, config.node_name)
        return run(config)
    _setup_logging(args.log_level)
    if args.command == "restore":
        from daemon.restore import run_restore

        return run_restore(args)
    from daemon.cluster import run_cluster

    return run_cluster(args)


if __name__ == "__main__":
    sys.exit(main())
