"""Scenario: the disk fills between two of the disk guard's checks, and the journal
must grow right then (the race that left a leader hung: the guard's check runs on the
same thread as the append, so only the append itself can release the ballast). Prints
one JSON line: whether the append finished, and what the guard says.

    python -m tests.chaos.journal_growth BASE_DIR

Run it through `netns.run_in_private_netns`: its mount namespace is private, so the
small tmpfs it mounts vanishes with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from pysyncobj.journal import FileJournal

from daemon.raft_disk import DiskGuard
from tests.chaos import netns
from tests.chaos.disk_full import fill

APPEND_WAIT_S = 10.0


def run(base_dir: Path) -> dict[str, Any]:
    data_dir = base_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(data_dir)],
                   check=True)  # fmt: skip
    journal = FileJournal(str(data_dir / "raft.journal"))
    guard = DiskGuard(data_dir, reserve_bytes=1 << 20, ballast_bytes=4 << 20)
    guard.refresh(force=True)  # lays the ballast down
    guard.install(journal)
    ballast_laid = guard.ballast.exists()
    fill(data_dir / "filler.bin")  # no refresh runs between this and the append

    entry = b"x" * (64 << 10)
    appended = threading.Event()

    def append() -> None:
        for index in range(1, 9):  # 512 KiB: the journal grows past its first pages
            journal.add(entry, index, 1)
        appended.set()

    started = time.monotonic()
    threading.Thread(target=append, daemon=True).start()
    finished = appended.wait(APPEND_WAIT_S)
    return {
        "ballastLaid": ballast_laid,
        "appendFinished": finished,
        "appendS": round(time.monotonic() - started, 3),
        "full": guard.full,
        "ballastLeft": guard.ballast.exists(),
        "journalBytes": os.stat(data_dir / "raft.journal").st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_dir", type=Path)
    args = parser.parse_args()
    netns.enter()
    result = run(args.base_dir)
    print(json.dumps(result), flush=True)
    # A hung append's thread would keep the process alive; the tmpfs goes with the
    # mount namespace.
    os._exit(0)


if __name__ == "__main__":
    main()
