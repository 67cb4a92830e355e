"""The layout records which release each node runs, and grows and shrinks by one node."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from daemon.localcluster import Layout, LayoutError, NodeProcess, ReleaseChoice
from daemon.localcluster import releases as rel


def _fake_release(root: Path, name: str) -> Path:
    """An environment that looks installed: enough for the layout's checks."""
    env = root / name
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    (env / ".installed").write_text(json.dumps({"sha256": "0" * 64}))
    return env


def test_a_node_without_a_release_runs_the_checkout_as_before(tmp_path: Path) -> None:
    layout = Layout.on_free_ports(tmp_path / "c", 3)
    layout.save()
    layout.write_configs()
    node = NodeProcess(layout, "unrdf-daemon-0", env={"PYTHONPATH": "/somewhere"})
    node._prepare()
    assert node.handle.argv[1:3] == ["-m", "daemon"]
    assert node.handle.env["PYTHONPATH"] == "/somewhere"
    assert "DAEMON_RELEASE" not in node.handle.env
    assert node.release is None and node.status().release is None


def test_run_on_starts_the_node_from_the_release_without_the_callers_pythonpath(
    tmp_path: Path,
) -> None:
    layout = Layout.on_free_ports(tmp_path / "c", 3)
    layout.save()
    layout.write_configs()
    env = _fake_release(tmp_path / "releases", "r-2")
    layout.run_on("unrdf-daemon-1", "r-2", tmp_path / "releases")

    # Another process, loading the layout from disk, starts it the same way.
    again = Layout.load(layout.root)
    node = NodeProcess(again, "unrdf-daemon-1", env={"PYTHONPATH": "/checkout"})
    node._prepare()
    assert node.handle.argv[:4] == [str(env / "bin" / "python"), "-P", "-m", "daemon"]
    assert "PYTHONPATH" not in node.handle.env
    assert node.handle.env["DAEMON_RELEASE"] == "r-2"
    assert node.release == "r-2"
    # `make run` rewrites layout.json on every start; the choice lives beside it.
    Layout.on_free_ports(layout.root, 3).save()
    assert Layout.load(layout.root).release_of("unrdf-daemon-1") == ReleaseChoice(
        "r-2", (tmp_path / "releases").resolve()
    )

    layout.run_on("unrdf-daemon-1", None)
    assert NodeProcess(layout, "unrdf-daemon-1").release is None


def rel_choice(tmp_path: Path, release: str):
    from daemon.localcluster import ReleaseChoice

    return ReleaseChoice(release, (tmp_path / "releases").resolve())


def test_run_on_a_release_that_is_not_installed_is_refused(tmp_path: Path) -> None:
    layout = Layout.on_free_ports(tmp_path / "c", 3)
    layout.save()
    with pytest.raises(LayoutError, match="not installed"):
        layout.run_on("unrdf-daemon-0", "r-9", tmp_path / "releases")
    with pytest.raises(LayoutError, match="not valid"):
        layout.run_on("unrdf-daemon-0", "../etc", tmp_path / "releases")
    with pytest.raises(LayoutError, match="no node named"):
        layout.run_on("unrdf-daemon-7", None)
    assert layout.release_of("unrdf-daemon-0") is None


def test_a_start_of_a_node_whose_release_was_removed_fails_with_the_reason(
    tmp_path: Path,
) -> None:
    layout = Layout.on_free_ports(tmp_path / "c", 3)
    layout.save()
    layout.write_configs()
    _fake_release(tmp_path / "releases", "r-2")
    layout.run_on("unrdf-daemon-0", "r-2", tmp_path / "releases")
    rel.uninstall(tmp_path / "releases", "r-2")
    with pytest.raises(LayoutError, match="not installed"):
        NodeProcess(layout, "unrdf-daemon-0").start()


def test_add_node_takes_the_next_free_index_and_free_ports(tmp_path: Path) -> None:
    layout = Layout.on_free_ports(tmp_path / "c", 3)
    layout.save()
    layout.write_configs()
    added = layout.add_node()
    assert added.name == "unrdf-daemon-3"
    assert len({s.http_port for s in layout.nodes} | {s.raft_port for s in layout.nodes}) == 8
    peers = json.loads(layout.config_path(added.name).read_text())["peers"]
    assert [p["name"] for p in peers] == [f"unrdf-daemon-{i}" for i in range(4)]
    assert [s.name for s in Layout.load(layout.root).nodes][-1] == "unrdf-daemon-3"

    layout.remove_node("unrdf-daemon-1")
    assert not layout.node_dir("unrdf-daemon-1").exists()
    assert layout.add_node().name == "unrdf-daemon-1"  # the gap is reused, empty


def test_a_sequential_layout_grows_on_its_own_port_scheme(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    layout = Layout.sequential(tmp_path / "c", 3, base)
    layout.save()
    added = layout.add_node()
    if (added.http_port, added.raft_port) != (base + 3, base + 103):
        # Only when another process holds one of those ports right now.
        assert added.http_port not in (base, base + 1, base + 2)


def test_add_node_on_a_taken_port_is_refused(tmp_path: Path) -> None:
    layout = Layout.on_free_ports(tmp_path / "c", 3)
    layout.save()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LayoutError, match=f"port {port} .* is taken"):
            layout.add_node(port, port + 1 if port < 65535 else port - 1)
    assert len(Layout.load(layout.root).nodes) == 3


def test_a_running_node_cannot_be_removed_from_the_layout(tmp_path: Path) -> None:
    layout = Layout.on_free_ports(tmp_path / "c", 3)
    layout.save()
    layout.write_configs()
    node = NodeProcess(layout, "unrdf-daemon-0")
    # Any long-running process whose command line names the node's config will do.
    marker = str(layout.config_path("unrdf-daemon-0"))
    node.handle.argv = [sys.executable, "-c", "import time; time.sleep(30)", marker]
    node.handle.start()
    try:
        with pytest.raises(LayoutError, match="still running"):
            layout.remove_node("unrdf-daemon-0")
        assert layout.data_dir("unrdf-daemon-0").parent.exists()
    finally:
        node.stop(grace_s=2)
    layout.remove_node("unrdf-daemon-0")
    assert [s.name for s in layout.nodes] == ["unrdf-daemon-1", "unrdf-daemon-2"]
