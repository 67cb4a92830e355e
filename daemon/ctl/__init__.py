"""daemonctl: operate a daemon cluster through any node's HTTP API.

In the style of patronictl/etcdctl: one process per command, human tables by
default, ``--json`` for scripts, one-line errors on stderr and meaningful exit
codes (0 ok, 1 API error or no node reachable, 2 usage error).

- `client`: HTTP to the first node that answers, errors as one line;
- `formatting`: tables and field blocks for people (answers parsed by daemon.contract);
- `commands`: one function per subcommand;
- `parser`: argparse, options, and `main`.
"""

from __future__ import annotations

from daemon.ctl.parser import main

__all__ = ["main"]
