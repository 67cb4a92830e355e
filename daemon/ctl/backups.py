"""`daemonctl backup` and `daemonctl restore`: a cluster's backup without the console."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx

from daemon import backup
from daemon.ctl.client import Client
from daemon.ctl.errors import EXIT_OK, CliError
from daemon.restore import restore

BACKUP_TIMEOUT_S = 300.0  # a compaction plus a cut of the whole state


def cmd_backup(client: Client, args: argparse.Namespace, out: Any) -> int:
    dest = Path(args.out)
    if dest.exists() and not args.force:
        raise CliError(f"{dest} exists; choose another --out or pass --force")
    failures = []
    for base in client.urls:
        try:
            with client.stream("POST", base + "/admin/backup", BACKUP_TIMEOUT_S) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CliError(f"{base}: {response.status_code} {response.text[:200]}")
                size = backup.write_file(response.iter_bytes(), dest)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            failures.append(f"{base} ({exc})")
            continue
        except httpx.HTTPError as exc:
            raise CliError(f"backup from {base} failed: {exc}") from None
        except backup.BackupError as exc:
            raise CliError(str(exc)) from None
        manifest, _ = backup.read(dest)
        out.write(
            f"backup {dest}: {size} bytes, applied index {manifest['appliedIndex']}, "
            f"{manifest['operations']} operations, {manifest['totalExecutions']} executions "
            f"({manifest['executionRecordsHeld']} records held), digest "
            f"{manifest['digest'][:12]}, from {manifest['node']}\n"
        )
        return EXIT_OK
    raise CliError("no node answered at " + ", ".join(failures))


def cmd_restore(client: Client, args: argparse.Namespace, out: Any) -> int:
    try:
        result = restore(Path(args.backup), Path(args.data_dir), args.nodes, args.http_port)
    except backup.BackupError as exc:
        raise CliError(f"restore refused: {exc}") from None
    m = result.manifest
    out.write(
        f"restored {len(result.layout.nodes)} data dirs in {result.layout.root} at applied "
        f"index {m['appliedIndex']} ({m['totalExecutions']} executions), new cluster id "
        f"{result.cluster_id}\n"
    )
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction, sub: Any) -> None:
    p = sub(
        commands,
        "backup",
        cmd_backup,
        "take a consistent backup of the replicated state into a file, checked on arrival",
        "example: daemonctl backup --out cluster-$(date +%F).bak",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="where to write it (0600)")
    p.add_argument("--force", action="store_true", help="replace an existing FILE")
    p = sub(
        commands,
        "restore",
        cmd_restore,
        "write the data dirs of a new cluster from a backup (the nodes must be stopped)",
        "example: daemonctl restore --backup b.bak --data-dir var/restored --nodes 3\n"
        "then:    python -m daemon cluster --data-dir var/restored --nodes 3",
    )
    p.add_argument("--backup", required=True, metavar="FILE")
    p.add_argument("--data-dir", required=True, metavar="DIR")
    p.add_argument("--nodes", type=int, default=3, help="nodes of a new layout (default 3)")
    p.add_argument("--http-port", type=int, default=8080, help="first node's HTTP port")
