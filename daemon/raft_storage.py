"""The node's files: pysyncobj's journal (shrunk after compaction) and disk usage."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger("daemon.raft")

# A journal whose file is this much larger than its live records gets rewritten.
SHRINK_MIN_BYTES = 1 << 20


def journal_slack(journal: Any) -> int:
    """Bytes of pysyncobj's journal file past its live records."""
    try:
        used = journal._FileJournal__currentOffset
        size = journal._FileJournal__journalFile._ResizableFile__mm.size()
    except AttributeError:
        return 0
    # Keep headroom so steady appends don't resize on every entry.
    return size - max(2 * used, 1 << 16)


def shrink_journal(journal: Any) -> None:
    """pysyncobj's journal file doubles as it grows and never shrinks, even after
    compaction drops its records. Truncate it to its live records plus headroom
    (mmap.resize truncates the file on Linux)."""
    try:
        used = journal._FileJournal__currentOffset
        mm = journal._FileJournal__journalFile._ResizableFile__mm
        target = max(2 * used, 1 << 16)
        if mm.size() > target:
            journal.flush()
            mm.resize(target)
    except (AttributeError, OSError, ValueError, SystemError):
        log.exception("journal shrink failed; will retry after the next compaction")


def file_bytes(path: Path | str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def data_dir_bytes(data_dir: Path | str) -> int:
    total = 0
    try:
        for entry in os.scandir(data_dir):
            if entry.is_file(follow_symlinks=False):
                total += entry.stat().st_size
    except OSError:
        pass
    return total


def disk_usage(data_dir: Path | str) -> dict[str, float]:
    """The data dir's own bytes and its filesystem's fill, for the disk alert."""
    try:
        fs = shutil.disk_usage(data_dir)
    except OSError:
        return {"dataDirBytes": data_dir_bytes(data_dir)}
    return {
        "dataDirBytes": data_dir_bytes(data_dir),
        "fsUsedBytes": fs.used,
        "fsTotalBytes": fs.total,
        "fsUsage": round(fs.used / fs.total, 4) if fs.total else 0.0,
    }
