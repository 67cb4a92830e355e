"""Read the process table from /proc, to prove a stop left nothing running (zombies
included, unlike the node-process layer's own checks, whose /proc parsing this shares)."""

from pathlib import Path

from daemon.localcluster.process import stat_fields


def process_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group) for every live process."""
    table = {}
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit() and (fields := stat_fields(int(pid_dir.name))):
            table[int(pid_dir.name)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, (_, ppid, _) in table.items() if ppid in frontier}
        found |= frontier
    return found


def alive(pids: set[int], groups: set[int]) -> list[int]:
    """The processes among `pids`, or in any of `groups`, that still run (zombies count)."""
    return sorted(
        pid for pid, (_, _, pgrp) in process_table().items() if pid in pids or pgrp in groups
    )


def groups_of(pids: set[int]) -> set[int]:
    table = process_table()
    return {table[pid][2] for pid in pids if pid in table}
