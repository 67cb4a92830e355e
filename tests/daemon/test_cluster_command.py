"""`python -m daemon cluster --nodes 3 --data-dir DIR --http-port P`: a local cluster in the
foreground. Node i serves HTTP on P+i and Raft on P+100+i; Ctrl-C stops every node."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon.localcluster import Layout, LayoutError, NodeProcess
from tests.cluster_harness import ROOT, daemon_free_env, free_port, wait_for

pytestmark = pytest.mark.cluster

NODES = 3
GIVEN_TOKEN = "given-admin-token-0123456789"


def port_is_free(port: int, reuse: bool = False) -> bool:
    """True if nothing holds the port; with reuse, TIME_WAIT leftovers don't count."""
    with socket.socket() as sock:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port() -> int:
    """P with P..P+2 and P+100..P+102 all free."""
    for _ in range(200):
        base = free_port()
        if base + 102 > 65535:
            continue
        ports = [base + i for i in range(NODES)] + [base + 100 + i for i in range(NODES)]
        if all(port_is_free(p) for p in ports):
            return base
    raise AssertionError("no free block of ports for the cluster command")


clean_env = daemon_free_env


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it only waits to be reaped.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class ClusterCommand:
    def __init__(self, tmp_path: Path, env: dict[str, str], base: int | None = None) -> None:
        self.data_dir = tmp_path / "cluster"
        self.base = base if base is not None else free_base_port()
        self.stdout_path, self.stderr_path = tmp_path / "stdout", tmp_path / "stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daemon",
                    "cluster",
                    "--nodes",
                    str(NODES),
                    "--data-dir",
                    str(self.data_dir),
                    "--http-port",
                    str(self.base),
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group, like a terminal job
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.base + i}"

    def layout(self) -> Layout:
        return Layout.load(self.data_dir)

    def node_pids(self) -> list[int]:
        pids = [NodeProcess(self.layout(), f"unrdf-daemon-{i}").pid for i in range(NODES)]
        assert None not in pids, "every node has a live pid record"
        return pids  # type: ignore[return-value]

    def wait_ready(self) -> None:
        for i in range(NODES):
            wait_for(
                lambda i=i: (
                    httpx.get(self.url(i) + "/health/startup", timeout=2).status_code == 200
                ),
                timeout=40,
                what=f"node {i} ready\n{self.stderr[-3000:]}",
            )

    def ctrl_c(self) -> int:
        """What Ctrl-C in a terminal does: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout=60)

    def kill_everything(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        try:
            layout = self.layout()
        except LayoutError:
            return
        for spec in layout.nodes:
            NodeProcess(layout, spec.name).stop(grace_s=1)


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[ClusterCommand] = []

    def start(env: dict[str, str], base: int | None = None) -> ClusterCommand:
        command = ClusterCommand(tmp_path, env, base)
        started.append(command)
        return command

    yield start
    for command in started:
        command.kill_everything()


def define(url: str, token: str | None, op_id: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        url + "/operations",
        json={"id": op_id, "handler": {"kind": "noop"}},
        headers=headers,
        timeout=10,
    )


def test_three_nodes_start_print_a_generated_token_that_works_and_ctrl_c_stops_them_all(
    start,
) -> None:
    command = start(clean_env())
    command.wait_ready()
    for i in range(NODES):
        view = httpx.get(command.url(i) + "/health/node", timeout=5).json()
        assert view["name"] == f"unrdf-daemon-{i}"
        assert view["raftAddress"] == f"127.0.0.1:{command.base + 100 + i}"

    match = wait_for(
        lambda: re.search(r"admin token \(generated, stored in (\S+)\): (\S+)", command.stdout),
        what=f"the generated token on stdout\n{command.stdout}",
    )
    stored_in, token = Path(match.group(1)), match.group(2)
    assert stored_in == command.data_dir / "admin.token"
    assert stored_in.read_text().strip() == token
    assert stored_in.stat().st_mode & 0o077 == 0
    assert define(command.url(1), None, "cmd-op").status_code == 401
    created = define(command.url(1), token, "cmd-op")
    assert created.status_code == 201, created.text

    pids = command.node_pids()
    assert all(alive(pid) for pid in pids)
    assert command.ctrl_c() == 0
    wait_for(lambda: not any(alive(pid) for pid in pids), what="every node process gone")
    assert "all nodes stopped" in command.stdout
    for i in range(NODES):
        assert port_is_free(command.base + i, reuse=True)
        assert port_is_free(command.base + 100 + i, reuse=True)


def test_another_process_restarts_one_node_and_ctrl_c_still_stops_them_all(start) -> None:
    command = start(clean_env())
    command.wait_ready()
    old_pids = command.node_pids()
    # What the console's node manager does: it knows the data dir, not this process.
    node = NodeProcess(command.layout(), "unrdf-daemon-1", env=clean_env())
    new_pid = node.restart(grace_s=10)
    assert node.wait_ready(30), "\n".join(node.status(40).log_tail)
    assert httpx.get(command.url(0) + "/health/startup", timeout=2).status_code == 200
    wait_for(
        lambda: (
            f"unrdf-daemon-1 is running again (pid {new_pid})" in command.stdout
            or f"unrdf-daemon-1 restarted (pid {old_pids[1]} -> {new_pid})" in command.stdout
        ),
        what=f"the restart noticed\n{command.stdout}",
    )
    assert command.proc.poll() is None, "one node restarting does not end the command"
    assert command.ctrl_c() == 0
    pids = [old_pids[0], new_pid, old_pids[2]]
    wait_for(lambda: not any(alive(pid) for pid in pids), what="every node process gone")


def test_sigint_to_the_supervisor_alone_stops_every_node(start) -> None:
    # `kill -INT <pid>` from another shell reaches only the supervisor.
    command = start(clean_env())
    command.wait_ready()
    pids = command.node_pids()
    command.proc.send_signal(signal.SIGINT)
    assert command.proc.wait(timeout=60) == 0
    wait_for(lambda: not any(alive(pid) for pid in pids), what="every node process gone")


def test_the_daemon_token_from_the_environment_is_used_and_not_printed(start) -> None:
    command = start(clean_env(DAEMON_TOKEN=GIVEN_TOKEN))
    command.wait_ready()
    wait_for(lambda: "Ctrl-C" in command.stdout, what="the banner")
    assert "admin token: from DAEMON_TOKEN" in command.stdout
    assert GIVEN_TOKEN not in command.stdout + command.stderr
    assert not (command.data_dir / "admin.token").exists()
    assert define(command.url(0), "some-other-token-0123456789", "env-op").status_code == 401
    assert define(command.url(2), GIVEN_TOKEN, "env-op").status_code == 201
    assert command.ctrl_c() == 0


@pytest.mark.parametrize("offset", [1, 102], ids=["http-port", "raft-port"])
def test_a_taken_port_gives_one_line_and_exit_2(start, offset: int) -> None:
    base = free_base_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + offset))
        squatter.listen()
        command = start(clean_env(), base=base)
        assert command.proc.wait(timeout=30) == 2
    lines = command.stderr.strip("\n").splitlines()
    assert len(lines) == 1, command.stderr
    assert lines[0].startswith("daemon cluster: ")
    assert f"127.0.0.1:{base + offset}" in lines[0]
    assert "--http-port" in lines[0]
    assert not (command.data_dir / "run").exists(), "nothing may start when a port is taken"
