"""daemonctl's command line: options, subcommands, help texts, and `main`."""

from __future__ import annotations

import argparse
import os
import ssl
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TextIO

import httpx

from daemon.contract import METRICS_WINDOWS, ContractError
from daemon.ctl import local
from daemon.ctl.backups import add_commands as add_backup_commands
from daemon.ctl.client import DEFAULT_TIMEOUT_S, DEFAULT_URL, Client, split_urls
from daemon.ctl.commands import (
    Output,
    cmd_drain,
    cmd_members_add,
    cmd_members_list,
    cmd_members_remove,
    cmd_metrics,
    cmd_ops_define,
    cmd_ops_delete,
    cmd_ops_exec,
    cmd_ops_get,
    cmd_ops_history,
    cmd_ops_list,
    cmd_queue,
    cmd_snapshot,
    cmd_status,
    cmd_transfer_leader,
    cmd_undrain,
)
from daemon.ctl.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, PROG, CliError, UsageError

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
    p.add_argument(
        "--window", choices=tuple(METRICS_WINDOWS), help="5m, 1h, 24h, 7d or month (31 days)"
    )
    add_backup_commands(commands, _sub)
    _sub(commands, "queue", cmd_queue, "this node's executor: active, queued, capacity, items")
    local.add_commands(commands, _sub, _group)
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
    except ContractError as exc:
        err.write(f"{PROG}: unexpected answer from the daemon: {exc}\n")
        return EXIT_ERROR
    except BrokenPipeError:
        # `daemonctl ops list | head` closing the pipe early is not an error worth a trace.
        return EXIT_OK
    except Exception as exc:  # a bug or an unexpected answer shape: still one line
        err.write(f"{PROG}: internal error: {exc.__class__.__name__}: {exc}\n")
        return EXIT_ERROR
