"""The supervisor behind `manage.py up`: reports deaths and restarts, and escalates to SIGKILL."""

import io
import signal
import threading
from pathlib import Path

from console.core.ports import PortClaim
from console.core.supervisor import ProcessSpec, Supervisor
from daemon.localcluster import ProcessHandle
from tests.conftest import REPO_ROOT, wait_for
from tests.processes import alive


def supervise_in_background(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.supervise, args=(lambda: True,), daemon=True)
    thread.start()
    return thread


def test_a_child_that_dies_is_reported_and_the_others_keep_running() -> None:
    out = io.StringIO()
    supervisor = Supervisor(cwd=REPO_ROOT, out=out)
    supervisor.start_all(
        [ProcessSpec("boom", ["sh", "-c", "exit 3"]), ProcessSpec("sleeper", ["sleep", "60"])]
    )
    thread = supervise_in_background(supervisor)
    wait_for(lambda: "boom exited unexpectedly (exit code 3)" in out.getvalue(), 10, "report")
    assert [child.spec.name for child in supervisor.running()] == ["sleeper"]
    supervisor.request_stop()
    thread.join(timeout=5)
    supervisor.stop_all(grace_s=5)
    assert supervisor.running() == []


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    out = io.StringIO()
    supervisor = Supervisor(cwd=REPO_ROOT, out=out)
    # The trap is inherited by `sleep`: the whole group ignores SIGTERM.
    supervisor.start_all([ProcessSpec("stubborn", ["sh", "-c", "trap '' TERM; sleep 60; :"])])
    pgid = supervisor.children[0].pgid
    wait_for(lambda: len(alive(set(), {pgid})) == 2, 10, "sh and its sleep")
    supervisor.stop_all(grace_s=0.5)
    assert "SIGKILL: stubborn" in out.getvalue()
    assert alive(set(), {pgid}) == []


def test_a_taken_daemon_port_names_the_variable_that_moves_the_cluster() -> None:
    claim = PortClaim(8181, "daemon node 1 (Raft)", "DAEMON_HTTP_PORT", "the daemon cluster")
    assert claim.taken_message() == (
        "port 8181 is already in use (needed by daemon node 1 (Raft)); "
        "set DAEMON_HTTP_PORT to move the daemon cluster"
    )


def test_a_watched_process_restarted_by_another_handle_is_reported_and_still_stopped(
    tmp_path: Path,
) -> None:
    def napper() -> ProcessHandle:
        # What the node manager holds: a handle built from the same pid file, not ours.
        return ProcessHandle("napper", ["sleep", "60"], tmp_path / "n.log", tmp_path / "n.pid")

    out = io.StringIO()
    supervisor = Supervisor(cwd=REPO_ROOT, out=out, log_dir=tmp_path)
    handle = napper()
    supervisor.watch("napper", handle, start=handle.start)
    supervisor.start_all([ProcessSpec("sleeper", ["sleep", "60"])])
    thread = supervise_in_background(supervisor)
    first_pid = supervisor.children[0].last_pid

    other = napper()
    other.stop(grace_s=5)
    second_pid = other.start()
    wait_for(
        lambda: (
            f"napper was restarted (pid {first_pid} -> {second_pid})" in out.getvalue()
            or f"napper is running again (pid {second_pid})" in out.getvalue()
        ),
        10,
        "the restart to be reported",
    )
    assert "exited unexpectedly" not in out.getvalue(), "a watched process's exit is no failure"
    supervisor.request_stop()
    thread.join(timeout=5)
    supervisor.stop_all(grace_s=5)
    assert other.popen is not None  # it is this test's child: reap it here
    assert other.popen.wait(timeout=5) == -signal.SIGTERM
    assert not (tmp_path / "n.pid").exists()
