"""The node-process layer (daemon/localcluster): one node of a running local cluster is
stopped, restarted and inspected by any process that knows the layout, while the others
keep serving; a stale pid file is never taken for a running node."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon.localcluster import Layout, LayoutError, NodeProcess, process, stop_nodes
from daemon.localcluster.process import PidRecord, ProcessHandle, start_ticks
from tests.cluster_harness import (
    ADMIN_TOKEN,
    OPERATE_TOKEN,
    RAFT_PASSWORD,
    ROOT,
    daemon_free_env,
    wait_for,
)

pytestmark = pytest.mark.cluster

NOOP = {"id": "noop-op", "name": "noop", "handler": {"kind": "noop"}}


def new_layout(root: Path, size: int) -> Layout:
    layout = Layout.on_free_ports(root, size)
    layout.save()
    layout.write_secrets(RAFT_PASSWORD, {"admin": ADMIN_TOKEN, "operate": OPERATE_TOKEN})
    layout.write_configs()
    return layout


def nodes_of(layout: Layout) -> list[NodeProcess]:
    env = daemon_free_env()
    return [NodeProcess(layout, spec.name, env=env) for spec in layout.nodes]


def node_view(node: NodeProcess) -> dict:
    return httpx.get(node.url + "/health/node", timeout=2).json()


def leader_of(nodes: list[NodeProcess]) -> NodeProcess:
    def agreed() -> NodeProcess | None:
        names = {node_view(node)["leader"] for node in nodes}
        if len(names) == 1 and None not in names:
            return next(node for node in nodes if node.name in names)
        return None

    return wait_for(agreed, what="one agreed leader")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Layout, list[NodeProcess]]]:
    layout = new_layout(tmp_path / "cluster", 3)
    nodes = nodes_of(layout)
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            assert node.wait_ready(30), "\n".join(node.status(40).log_tail)
        yield layout, nodes
    finally:
        # Through a fresh handle: whoever started them, the layout is enough.
        stop_nodes(nodes_of(Layout.load(layout.root)), grace_s=10)


class Writer(threading.Thread):
    """Executes `noop-op` on one node as fast as it answers, counting failures."""

    def __init__(self, node: NodeProcess) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.acked = 0
        self.errors: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {OPERATE_TOKEN}"}
        with httpx.Client(headers=headers, timeout=5) as client:
            while not self.done.is_set():
                try:
                    response = client.post(f"{self.node.url}/execute/{NOOP['id']}")
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                if response.status_code == 200:
                    self.acked += 1
                else:
                    self.errors.append(f"{response.status_code} {response.text[:200]}")


def test_one_node_restarts_while_the_others_keep_serving_and_it_catches_up(running) -> None:
    layout, nodes = running
    leader = leader_of(nodes)
    created = httpx.post(
        leader.url + "/operations",
        json=NOOP,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    follower = next(node for node in nodes if node is not leader)
    old_pid = follower.pid

    writer = Writer(leader)
    writer.start()
    try:
        wait_for(lambda: writer.acked >= 50, what="50 executions before the restart")
        # Another handle, as the console's worker would have: it only knows the layout.
        restarted = NodeProcess(Layout.load(layout.root), follower.name, env=daemon_free_env())
        new_pid = restarted.restart(grace_s=10)
        assert new_pid != old_pid
        assert not follower.running() or follower.pid == new_pid
        acked_at_restart = writer.acked
        assert restarted.wait_ready(30), "\n".join(restarted.status(40).log_tail)
        wait_for(lambda: writer.acked >= acked_at_restart + 50, what="50 more after it")
    finally:
        writer.done.set()
        writer.join(timeout=10)
    assert writer.errors == [], writer.errors[:5]

    # It rejoined and caught up: every node at the same applied index and digest.
    def converged() -> bool:
        views = [node_view(node) for node in nodes]
        return len({(v["appliedIndex"], v["digest"]) for v in views}) == 1

    wait_for(converged, timeout=30, what="the restarted node to catch up")
    status = restarted.status()
    assert status.running and status.pid == new_pid
    assert status.uptime_s is not None and status.uptime_s < 120


def test_a_node_started_by_one_process_is_stopped_by_another_that_knows_only_the_layout(
    tmp_path: Path,
) -> None:
    layout = new_layout(tmp_path / "cluster", 1)
    name = layout.nodes[0].name
    # The starter exits right after starting the node: the node must outlive it.
    starter = (
        "import sys; from pathlib import Path;"
        "from daemon.localcluster import Layout, NodeProcess;"
        f"print(NodeProcess(Layout.load(Path(sys.argv[1])), {name!r}).start())"
    )
    result = subprocess.run(
        [sys.executable, "-c", starter, str(layout.root)],
        cwd=ROOT,
        env=daemon_free_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    pid = int(result.stdout)

    node = NodeProcess(Layout.load(layout.root), name)
    try:
        assert node.wait_ready(30), "\n".join(node.status(40).log_tail)
        status = node.status()
        assert (status.running, status.pid, status.exit_code) == (True, pid, None)
        assert any(name in line for line in status.log_tail), status.log_tail
        assert layout.pid_path(name).stat().st_mode & 0o777 == 0o600
    finally:
        node.stop(grace_s=10)
    assert start_ticks(pid) is None, "the node process is gone (or only a zombie)"
    assert not node.running()
    assert not layout.pid_path(name).exists()


def test_a_stale_pid_file_of_a_dead_or_reused_pid_is_not_a_running_node(tmp_path: Path) -> None:
    layout = new_layout(tmp_path / "cluster", 1)
    name = layout.nodes[0].name
    node = NodeProcess(layout, name)
    pid_path = layout.pid_path(name)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    argv = node.handle.argv

    # A dead pid: the process is gone, its record stays behind.
    dead = subprocess.Popen(["true"])
    dead.wait()
    PidRecord(dead.pid, 12345, argv).write(pid_path)
    assert not node.running() and node.status().pid is None

    # A reused pid: a live process that is not this node (another command line), and a
    # live process whose command line names this node's config but that started at
    # another time than the record says.
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    lookalike = subprocess.Popen(["sh", "-c", "sleep 60; :", str(layout.config_path(name))])
    try:
        ticks = wait_for(lambda: start_ticks(bystander.pid), what="the bystander to start")
        PidRecord(bystander.pid, ticks, argv).write(pid_path)
        assert not node.running()
        lookalike_ticks = wait_for(lambda: start_ticks(lookalike.pid), what="the lookalike")
        PidRecord(lookalike.pid, lookalike_ticks + 1, argv).write(pid_path)
        assert not node.running()
        PidRecord(lookalike.pid, lookalike_ticks, argv).write(pid_path)
        assert node.running(), "the same pid, start time and config: that is the node"

        # Stopping a node that is not running is not an error, and signals nobody.
        PidRecord(bystander.pid, ticks, argv).write(pid_path)
        assert node.stop(grace_s=1) is None
        assert bystander.poll() is None, "the bystander was signalled"
        assert not pid_path.exists(), "the stale pid file is cleaned up"

        # And a start over a stale pid file starts the node.
        PidRecord(bystander.pid, ticks, argv).write(pid_path)
        node.handle.env = daemon_free_env()
        node.start()
        assert node.wait_ready(30), "\n".join(node.status(40).log_tail)
        assert PidRecord.read(pid_path).pid == node.pid != bystander.pid
    finally:
        node.stop(grace_s=10)
        for process in (bystander, lookalike):
            process.send_signal(signal.SIGKILL)
            process.wait()


def test_a_node_whose_starter_died_before_writing_its_pid_file_is_found_and_stopped(
    tmp_path: Path,
) -> None:
    # A worker killed between starting a node and writing its pid file (a CI run saw it)
    # left a node nobody tracked: status said stopped, a second start failed on the
    # data-dir lock, and nothing ever stopped it. The node's own lock names it.
    layout = new_layout(tmp_path / "cluster", 1)
    name = layout.nodes[0].name
    starter = NodeProcess(layout, name, env=daemon_free_env())
    starter.start()
    pid = starter.pid
    assert starter.wait_ready(30), "\n".join(starter.status(40).log_tail)
    dead = subprocess.Popen(["true"])
    dead.wait()
    # What the pid file held before this start: the previous, stopped run of the node.
    PidRecord(dead.pid, 12345, starter.handle.argv).write(layout.pid_path(name))

    node = NodeProcess(Layout.load(layout.root), name, env=daemon_free_env())
    try:
        assert node.running() and node.pid == pid
        assert PidRecord.read(layout.pid_path(name)).pid == pid, "adopted into the pid file"
        with pytest.raises(RuntimeError, match="already running"):
            node.start()
    finally:
        node.stop(grace_s=10)
    assert start_ticks(pid) is None, "the adopted node was stopped"
    assert not node.running()


def test_two_processes_starting_the_same_node_at_once_start_it_once(tmp_path: Path) -> None:
    layout = new_layout(tmp_path / "cluster", 1)
    name = layout.nodes[0].name
    go = tmp_path / "go"
    # Both racers load everything, say so, then spin until `go` appears: their start()
    # calls begin within a millisecond of each other.
    starter = f"""
import os, sys, time
from pathlib import Path
from daemon.localcluster import Layout, NodeProcess
node = NodeProcess(Layout.load(Path(sys.argv[1])), {name!r})
Path(sys.argv[2] + f".{{os.getpid()}}").touch()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.0002)
print(node.start())
"""
    argv = [sys.executable, "-c", starter, str(layout.root), str(go)]
    env = daemon_free_env()
    racers = [
        subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    wait_for(lambda: len(list(tmp_path.glob("go.*"))) == 2, what="both racers at the line")
    go.touch()
    outputs = [racer.communicate(timeout=30) for racer in racers]
    outcomes = sorted(
        (racer.returncode, *output) for racer, output in zip(racers, outputs, strict=True)
    )
    node = NodeProcess(Layout.load(layout.root), name)
    try:
        (won, winner_out, _), (lost, _, loser_err) = outcomes
        assert won == 0 and lost != 0, outcomes
        assert b"is already running" in loser_err
        winner_pid = int(winner_out)
        assert node.wait_ready(30), "\n".join(node.status(40).log_tail)
        assert node.pid == winner_pid
    finally:
        node.stop(grace_s=10)


def test_the_layout_keeps_its_secrets_private_and_reuses_the_stored_raft_secret(
    tmp_path: Path,
) -> None:
    layout = Layout.sequential(tmp_path / "cluster", 3, http_port=18080)
    layout.save()
    generated = layout.write_secrets(tokens={"admin": ADMIN_TOKEN})
    assert layout.write_secrets(tokens={"admin": ADMIN_TOKEN}) == generated
    layout.write_configs()
    assert layout.root.stat().st_mode & 0o777 == 0o700
    for path in (layout.raft_secret_path, layout.tokens_path, layout.root / "layout.json"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    config = json.loads(layout.config_path("unrdf-daemon-2").read_text())
    assert config["http"]["port"] == 18082
    assert config["raft"]["bindAddress"] == "127.0.0.1:18182"
    assert config["raft"]["passwordFile"] == str(layout.raft_secret_path)
    assert RAFT_PASSWORD not in layout.config_path("unrdf-daemon-2").read_text()
    assert Layout.load(layout.root) == layout
    with pytest.raises(LayoutError, match="no node named 'unrdf-daemon-7'"):
        NodeProcess(layout, "unrdf-daemon-7")


def test_a_node_directory_from_before_the_layout_keeps_its_raft_state(tmp_path: Path) -> None:
    # `python -m daemon cluster` used to keep the journal in the node's directory itself.
    layout = Layout.sequential(tmp_path / "cluster", 1, http_port=18080)
    old_dir = layout.node_dir("unrdf-daemon-0")
    old_dir.mkdir(parents=True)
    (old_dir / "raft.journal").write_bytes(b"journal")
    (old_dir / "raft.journal.meta").write_bytes(b"meta")
    layout.write_configs()
    data_dir = layout.data_dir("unrdf-daemon-0")
    assert (data_dir / "raft.journal").read_bytes() == b"journal"
    assert (data_dir / "raft.journal.meta").read_bytes() == b"meta"
    assert not list(old_dir.glob("raft.*"))


def test_a_large_log_is_set_aside_when_the_process_starts_and_three_generations_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process, "LOG_ROTATE_BYTES", 32)
    log = tmp_path / "node.log"
    handle = ProcessHandle("echo", ["sh", "-c", "echo started"], log)
    for generation in range(4):
        log.write_bytes(b"x" * 64 + str(generation).encode())
        handle.start()
        handle.popen.wait(timeout=10)

    assert log.read_text() == "started\n"
    assert (tmp_path / "node.log.1").read_bytes().endswith(b"3")
    assert (tmp_path / "node.log.3").read_bytes().endswith(b"1")
    assert not (tmp_path / "node.log.4").exists()


def test_a_small_log_is_appended_to_across_starts(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text("before\n")
    handle = ProcessHandle("echo", ["sh", "-c", "echo again"], log)
    handle.start()
    handle.popen.wait(timeout=10)
    assert log.read_text() == "before\nagain\n"
    assert not (tmp_path / "node.log.1").exists()
