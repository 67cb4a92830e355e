"""`manage.py up` (what `make run` runs): starts everything, stops it all, reuses data."""

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from daemon.localcluster import Layout, NodeProcess
from daemon.localcluster.process import cmdline
from tests.conftest import REPO_ROOT, embedded_defaults_env, free_port, port_answers, wait_for
from tests.processes import alive, descendants, groups_of


def free_daemon_base_port() -> int:
    """A base port whose three HTTP (base+i) and three Raft (base+100+i) ports are free."""
    for _ in range(50):
        base = free_port()
        ports = [base + offset + i for offset in (0, 100) for i in range(3)]
        if all(port <= 65535 and _bindable(port) for port in ports):
            return base
    pytest.fail("no free block of daemon ports found")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@dataclass
class UpRun:
    process: subprocess.Popen[bytes]
    log: Path
    console_port: int

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_up(var_dir: Path, log: Path, *args: str, daemon_port: int | None = None) -> UpRun:
    console_port = free_port()
    env = embedded_defaults_env(
        CONSOLE_VAR_DIR=str(var_dir),
        CONSOLE_PORT=str(console_port),
        DAEMON_HTTP_PORT=str(daemon_port or free_daemon_base_port()),
        NO_COLOR="1",
    )
    env.pop("CONSOLE_ADMIN_PASSWORD", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "up", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return UpRun(process, log, console_port)


def wait_until_ready(run: UpRun) -> None:
    wait_for(
        lambda: "console ready:" in run.output() or run.process.poll() is not None,
        90,
        "the console to come up",
    )
    assert run.process.poll() is None, run.output()
    assert port_answers(run.console_port)


def interrupt(run: UpRun) -> int:
    run.process.send_signal(signal.SIGINT)
    try:
        return run.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        run.process.kill()
        pytest.fail(f"`up` did not stop within 60s of SIGINT:\n{run.output()}")


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "var"
    yield path


def test_up_starts_the_console_and_ctrl_c_leaves_no_process_behind(
    var_dir: Path, tmp_path: Path
) -> None:
    run = start_up(var_dir, tmp_path / "up.log")
    try:
        wait_until_ready(run)
        # The Celery worker forks pool processes: grandchildren must go too.
        wait_for(lambda: "ready." in run.output(), 60, "the Celery worker to be ready")
        # Each node is its own process (not one `python -m daemon cluster`), and its log
        # reaches the one stream, prefixed by its name.
        node_pids = running_node_pids(var_dir)
        wait_for(lambda: "unrdf-daemon-2 | " in run.output(), 30, "a node's log line")
        started = descendants(run.process.pid)
        groups = groups_of(started)
        assert len(started) >= 6, run.output()  # 3 nodes, daphne, celery and its pool
        assert set(node_pids) <= started
        output = run.output()
        assert f"console ready: http://127.0.0.1:{run.console_port}/" in output
        assert "log in as admin / " in output
        # A fresh install registers the checkout as its first release, and the nodes run
        # it: from the release's own environment, not from this checkout.
        first = re.search(r"the local nodes start from release (\S+)", output)
        assert first, output
        layout = Layout.load(var_dir / "cluster")
        for spec in layout.nodes:
            build = httpx.get(f"{spec.url}/health/node", timeout=5).json()["build"]
            assert build["release"] == first.group(1), (spec.name, build)
        assert all("/releases/envs/" in cmdline(pid)[0] for pid in node_pids)
    finally:
        returncode = interrupt(run)

    assert returncode == 0, run.output()
    assert alive(started, groups) == [], run.output()
    assert "all processes stopped" in run.output()
    assert (var_dir / "daemon_token").stat().st_mode & 0o777 == 0o600
    assert_owner_only(var_dir)


def assert_owner_only(var_dir: Path) -> None:
    """Everything `make run` leaves in var/ is 0700 (directories) or 0600 (files); an
    release's stored wheel and installed environment (var/releases/) are owner-only too,
    and read-only."""
    assert var_dir.stat().st_mode & 0o777 == 0o700
    checked = {"console.sqlite3": False, "raft.journal": False}
    releases = var_dir / "releases"
    for path in var_dir.rglob("*"):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if releases in path.parents:
            assert mode & 0o077 == 0 and mode & 0o400, (path, oct(mode))
        else:
            assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
        if path.name in checked:
            checked[path.name] = True
    assert all(checked.values()), checked


def test_an_earlier_runs_world_readable_var_is_made_owner_only(tmp_path: Path) -> None:
    from console.core.filemodes import make_private

    var_dir = tmp_path / "var"
    (var_dir / "cluster" / "unrdf-daemon-0").mkdir(parents=True, mode=0o755)
    (var_dir / "console.sqlite3").write_text("sessions")
    (var_dir / "cluster" / "unrdf-daemon-0" / "raft.journal").write_text("journal")
    (var_dir / "console.sqlite3").chmod(0o644)
    old = os.umask(0o022)
    try:
        make_private(var_dir)
        created = var_dir / "after.txt"
        created.write_text("x")
    finally:
        os.umask(old)
    assert created.stat().st_mode & 0o777 == 0o600
    assert (var_dir / "console.sqlite3").stat().st_mode & 0o777 == 0o600
    assert (var_dir / "cluster" / "unrdf-daemon-0").stat().st_mode & 0o777 == 0o700


def running_node_pids(var_dir: Path) -> list[int]:
    layout = Layout.load(var_dir / "cluster")
    pids = [NodeProcess(layout, spec.name).pid for spec in layout.nodes]
    assert len(pids) == 3 and None not in pids, pids
    return pids  # type: ignore[return-value]


def test_daemon_nodes_outlive_a_killed_up_and_the_next_run_adopts_them(
    var_dir: Path, tmp_path: Path
) -> None:
    daemon_port = free_daemon_base_port()
    skip = ("--skip", "worker", "--skip", "collector")
    first = start_up(var_dir, tmp_path / "first.log", *skip, daemon_port=daemon_port)
    try:
        wait_until_ready(first)
        pids = running_node_pids(var_dir)
        console_pids = descendants(first.process.pid) - set(pids)
    finally:
        first.process.kill()  # no chance to stop anything
        first.process.wait()
    wait_for(lambda: alive(console_pids, set()) == [], 10, "daphne to die with `up`")
    assert running_node_pids(var_dir) == pids, "the nodes outlive the console"

    second = start_up(var_dir, tmp_path / "second.log", *skip, daemon_port=daemon_port)
    try:
        wait_until_ready(second)
        for i, pid in enumerate(pids):
            assert f"adopted unrdf-daemon-{i} (pid {pid}, still running)" in second.output()
    finally:
        assert interrupt(second) == 0, second.output()
    assert alive(set(pids), set(pids)) == [], second.output()


def test_a_second_run_reuses_the_data_and_does_not_print_a_password(
    var_dir: Path, tmp_path: Path
) -> None:
    for attempt in ("first", "second"):
        run = start_up(var_dir, tmp_path / f"{attempt}.log", "--skip", "worker", "--skip", "daemon")
        try:
            wait_until_ready(run)
        finally:
            assert interrupt(run) == 0, run.output()
    output = run.output()
    assert "admin user exists; password was printed on first run" in output
    assert "log in as admin / " not in output


def test_a_taken_console_port_is_a_one_line_error_naming_the_variable(
    var_dir: Path, tmp_path: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = embedded_defaults_env(CONSOLE_VAR_DIR=str(var_dir), CONSOLE_PORT=str(port))
        result = subprocess.run(
            [sys.executable, "manage.py", "up"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"CommandError: port {port} is already in use; set CONSOLE_PORT to move the console"
    ]
    assert not (var_dir / "console.sqlite3").exists(), "nothing may start when a port is taken"
