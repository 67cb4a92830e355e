"""Read the process table from /proc, to prove a stop left nothing running."""

from pathlib import Path


def _stat_fields(pid_dir: Path) -> list[str] | None:
    try:
        raw = (pid_dir / "stat").read_text()
    except OSError:
        return None  # exited while we looked
    # comm (field 2) may hold spaces and parentheses; everything after the last ')' is plain.
    return raw[raw.rindex(")") + 2 :].split()


def process_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, parent pid, process group) for every live process."""
    table = {}
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit() and (fields := _stat_fields(pid_dir)):
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
