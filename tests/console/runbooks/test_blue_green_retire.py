"""The local node manager's retire: an old member leaves the layout, its data stays."""

from __future__ import annotations

from pathlib import Path

from console.runbooks.nodes.local import RETIRED_DIR, LocalNodeManager
from daemon.localcluster import Layout


def test_a_retired_node_leaves_the_layout_and_its_data_is_kept_where_the_answer_says(
    tmp_path: Path,
) -> None:
    layout = Layout.on_free_ports(tmp_path / "cluster", 3)
    layout.save()
    layout.write_configs()
    journal = layout.data_dir("unrdf-daemon-1") / "raft.journal"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_bytes(b"entries")
    nodes = LocalNodeManager(layout.root, tmp_path / "envs")

    kept = nodes.retire_node("unrdf-daemon-1")

    assert nodes.names() == ["unrdf-daemon-0", "unrdf-daemon-2"]
    assert kept.parent == layout.root / RETIRED_DIR and kept.name.startswith("unrdf-daemon-1-")
    assert (kept / "data" / "raft.journal").read_bytes() == b"entries"
    assert not layout.node_dir("unrdf-daemon-1").exists()
    # Asked again (a resumed run): the same place, nothing else moved or deleted.
    assert nodes.retire_node("unrdf-daemon-1") == kept
    # A node added later under the freed name starts empty; the kept data is untouched.
    assert nodes.add_node().name == "unrdf-daemon-1"
    assert (kept / "data" / "raft.journal").exists()
