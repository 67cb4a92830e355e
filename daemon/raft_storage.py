"""The node's files: pysyncobj's journal (shrunk after compaction), disk usage, and the
full-dump file a restored node starts from."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from pysyncobj import pickle as pysyncobj_pickle
from pysyncobj.node import TCPNode

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


# ---- restore: the full-dump file a node loads at start (pysyncobj 0.3.17's format) ----------
def write_full_dump(
    path: str, state_data: dict, code_version: int, applied_index: int, members: list[str]
) -> None:
    """Write the file pysyncobj loads at start (``fullDumpFile``) so a node whose journal is
    empty begins at `applied_index` with `state_data` and these Raft members. The dump is
    ``(data, entry at the applied index, the entry before it, cluster)``: two no-op entries
    of term 0 (a new cluster starts its own terms), the enabled code version and the state."""
    no_op = bytes([1])  # pysyncobj's _COMMAND_TYPE.NO_OP
    data = [{"_SyncObj__enabledCodeVersion": code_version}, state_data]
    dump = (
        data,
        (no_op, applied_index, 0),
        (no_op, applied_index - 1, 0),
        {TCPNode(address) for address in members},
    )
    temporary = f"{path}.tmp"
    # Level 1: pysyncobj reads any level, and the default (9) took seconds at 100k records.
    with (
        open(temporary, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as out,
    ):
        pysyncobj_pickle.dump(dump, out)
    os.replace(temporary, path)
