"""var/ is owner-only (issue 14, point 10): 0700 directories and 0600 files.

var/ holds the SQLite database (whose session rows work as login cookies), the
secrets `make run` generates, the daemons' Raft journals and dumps, and the broker's
messages. `make_private` sets the process umask to 077, so whatever this process and
its children create is owner-only, and tightens what an earlier run left behind.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

UMASK = 0o077


def make_private(var_dir: Path) -> None:
    os.umask(UMASK)
    var_dir.mkdir(parents=True, exist_ok=True)
    var_dir.chmod(0o700)
    for root, dirs, files in os.walk(var_dir):
        for name in dirs:
            _chmod(Path(root) / name, 0o700)
        for name in files:
            _chmod(Path(root) / name, 0o600)


def _chmod(path: Path, mode: int) -> None:
    if path.is_symlink():
        return  # a release env may link elsewhere; never follow it
    # It may have vanished (a log rotated, a broker message consumed) or not be ours.
    with contextlib.suppress(OSError):
        path.chmod(mode)
