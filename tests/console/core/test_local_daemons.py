"""Which nodes `make run` starts: the layout an earlier run left, when it is on our ports."""

from __future__ import annotations

from pathlib import Path

from console.core.local_daemons import local_layout
from daemon.localcluster import Layout, free_port


def _base_port() -> int:
    # Any base whose first three HTTP ports and their Raft ports are unlikely to be taken.
    return 20000 + free_port() % 20000


def test_a_fresh_var_dir_gets_three_sequential_nodes(tmp_path: Path) -> None:
    base = _base_port()
    layout = local_layout(tmp_path, base)
    assert [(s.name, s.http_port, s.raft_port) for s in layout.nodes] == [
        (f"unrdf-daemon-{i}", base + i, base + 100 + i) for i in range(3)
    ]


def test_a_cluster_scaled_by_an_earlier_run_keeps_its_nodes(tmp_path: Path) -> None:
    base = _base_port()
    earlier = local_layout(tmp_path, base)
    earlier.save()
    earlier.add_node()
    earlier.add_node()
    earlier.remove_node("unrdf-daemon-1")
    again = local_layout(tmp_path, base)
    assert [s.name for s in again.nodes] == [s.name for s in Layout.load(earlier.root).nodes]
    assert [s.name for s in again.nodes] == [
        "unrdf-daemon-0",
        "unrdf-daemon-2",
        "unrdf-daemon-3",
        "unrdf-daemon-4",
    ]


def test_a_moved_http_port_gets_the_fresh_layout(tmp_path: Path) -> None:
    base = _base_port()
    local_layout(tmp_path, base).save()
    moved = local_layout(tmp_path, base + 10)
    assert [s.http_port for s in moved.nodes] == [base + 10 + i for i in range(3)]
