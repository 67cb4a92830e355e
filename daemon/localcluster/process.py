"""One detached process: start it, find it again from any process, stop it, report it.

A started process leads its own session (so a Ctrl-C in the starter's terminal does not
reach it, and stopping its group reaches whatever it forked) and writes to a log file,
not to the starter's pipes, so it can outlive the starter. Its pid file records the pid,
the kernel's start time of that pid and its command line: a pid the kernel has since
given to another process does not match, so a stale pid file is never taken for a
running process.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from daemon.localcluster.layout import write_private
from daemon.localcluster.polling import wait_until

CLK_TCK = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1
# A node log over this size is set aside when the node starts (see rotate_log).
LOG_ROTATE_BYTES = 20 * 1024 * 1024
LOG_GENERATIONS = 3


# ---- /proc -------------------------------------------------------------------------------
def stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first), or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses; everything after the last ')' is plain.
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot; None if it is gone or a zombie."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode("utf-8", "replace").rstrip("\0").split("\0") if raw else []


def uptime_s(ticks: int) -> float:
    since_boot = float(Path("/proc/uptime").read_text().split()[0])
    return round(max(0.0, since_boot - ticks / CLK_TCK), 2)


def group_members(pgid: int, include_zombies: bool = False) -> list[int]:
    """Processes in process group `pgid`. Zombies count only if asked: the parent of a
    group's leader waits until the kernel has let go of all of them, anyone else cannot
    reap them and only waits until they stopped running."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is None or int(fields[2]) != pgid:
                continue
            if include_zombies or fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


def _die_with_parent() -> None:
    # For processes that must not outlive their supervisor even if it is SIGKILLed.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def tail_lines(path: Path, count: int, max_bytes: int = 256 * 1024) -> list[str]:
    """The last `count` lines of a (possibly large) log file."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-count:] if count > 0 else []


# ---- the pid record ----------------------------------------------------------------------
@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int
    argv: list[str]

    def matches(self, marker: str | None) -> bool:
        """Is this pid still the process we started (same start time, and `marker` in its
        command line), not a later process that was given the same pid?"""
        if start_ticks(self.pid) != self.start_ticks:
            return False
        return marker is None or any(marker in arg for arg in cmdline(self.pid))

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        try:
            data = json.loads(path.read_text())
            return cls(int(data["pid"]), int(data["startTicks"]), list(data["argv"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        data = {"pid": self.pid, "startTicks": self.start_ticks, "argv": self.argv}
        write_private(path, json.dumps(data) + "\n")


# ---- the handle --------------------------------------------------------------------------
def rotate_log(path: Path) -> None:
    """At start, a log over LOG_ROTATE_BYTES becomes `<name>.1` (older ones shift up, and
    LOG_GENERATIONS are kept).

    Only at start: the process writes to the file it was given, so a node that runs for
    months still grows one file; its restarts (every upgrade) keep the total bounded."""
    try:
        if path.stat().st_size <= LOG_ROTATE_BYTES:
            return
    except FileNotFoundError:
        return
    for n in range(LOG_GENERATIONS - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))


class ProcessHandle:
    """Start, find, stop and report one detached process.

    The starting process keeps the Popen (to reap it and learn its exit code); any other
    process finds the same process through the pid file, checked against /proc.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        pid_path: Path | None = None,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        marker: str | None = None,
        die_with_parent: bool = False,
        claim_path: Path | None = None,
    ) -> None:
        """claim_path: a file the process itself writes its pid into once it runs (a
        node's data-dir lock), read when the pid file does not name a running process."""
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.pid_path = pid_path
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        self.marker = marker
        self.die_with_parent = die_with_parent
        self.claim_path = claim_path
        self.popen: subprocess.Popen[bytes] | None = None
        self._record: PidRecord | None = None

    # ---- finding it ----------------------------------------------------------------------
    def record(self) -> PidRecord | None:
        """The running process's record, or None if it is not running (whatever a stale
        pid file says)."""
        if self.popen is not None and self.popen.poll() is None:
            return self._record  # ours, and alive
        # Not ours, or ours has exited: another process may have started it since.
        record = PidRecord.read(self.pid_path) if self.pid_path is not None else None
        if record is not None and record.matches(self.marker):
            return record
        return self._adopt_claimant()

    def _adopt_claimant(self) -> PidRecord | None:
        """The process named in claim_path, if it runs with our marker: it was started
        and its starter died before writing the pid file (a worker killed between the
        two). Adopted into the pid file, so status, stop and start see it again."""
        if self.claim_path is None or self.marker is None:
            return None
        try:
            pid = int(self.claim_path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        ticks = start_ticks(pid)
        argv = cmdline(pid)
        if ticks is None or not any(self.marker in arg for arg in argv):
            return None
        record = PidRecord(pid, ticks, argv)
        if self.pid_path is not None:
            record.write(self.pid_path)
        return record

    @property
    def pid(self) -> int | None:
        record = self.record()
        return record.pid if record else None

    def running(self) -> bool:
        return self.record() is not None

    def exit_code(self) -> int | None:
        """Known only to the process that started it (it reaps it)."""
        return self.popen.poll() if self.popen is not None else None

    def uptime_s(self) -> float | None:
        record = self.record()
        return uptime_s(record.start_ticks) if record else None

    def log_tail(self, count: int = 20) -> list[str]:
        return tail_lines(self.log_path, count)

    # ---- starting ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One start or stop of this process at a time, across processes: two starts
        racing would both pass the "not running" check, and the loser (refused by the
        node's data-dir lock) could overwrite the winner's pid file."""
        if self.pid_path is None:
            yield
            return
        self.pid_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.pid_path.with_name(self.pid_path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def start(self) -> int:
        with self._exclusive():
            return self._start()

    def stop(self, grace_s: float = 15.0) -> int | None:
        """SIGTERM to the process (so it shuts down its own way), then to its group for
        what it left behind; SIGKILL to the group after `grace_s`. Returns the exit code
        if known. A process that is not running is not an error."""
        with self._exclusive():
            return self._stop(grace_s)

    def restart(self, grace_s: float = 15.0) -> int:
        """Stop and start as one step: no other start or stop gets in between."""
        with self._exclusive():
            self._stop(grace_s)
            return self._start()

    def _start(self) -> int:
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        rotate_log(self.log_path)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        ticks = start_ticks(self.popen.pid)
        # A process that died at once has no start time left to record; the Popen knows.
        self._record = PidRecord(self.popen.pid, -1 if ticks is None else ticks, self.argv)
        if self.pid_path is not None:
            self.pid_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._record.write(self.pid_path)
        return self.popen.pid

    # ---- stopping ------------------------------------------------------------------------
    def send(self, signum: int) -> bool:
        """Signal the process itself (not its group); False if it is not running."""
        pid = self.pid
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        return True

    def group_alive(self) -> bool:
        """The process, or anything it forked into its group, still runs."""
        pgid = self._pgid()
        return pgid is not None and bool(group_members(pgid))

    def signal_group(self, signum: int) -> None:
        pgid = self._pgid()
        if pgid is not None:
            signal_group(pgid, signum)

    def _pgid(self) -> int | None:
        # start_new_session: the process leads its group, so the group id is its pid. A
        # stale pid file's pid names no group of ours: only a verified record counts.
        record = self.record()
        if record is not None:
            return record.pid
        if self.popen is not None:
            self.popen.poll()  # reap the leader, or its zombie keeps the group id in use
            return self.popen.pid
        return None

    def _stop(self, grace_s: float) -> int | None:
        record = self.record()
        pgid = record.pid if record is not None else self._pgid()
        if pgid is None or not group_members(pgid):
            self.clear_stale_pid_file()
            return self.exit_code()
        if record is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        wait_until(lambda: not self._alive(record), deadline)
        signal_group(pgid, signal.SIGTERM)

        # Zombies count only in a group whose leader we can reap (our child): others are
        # reaped by their own parent, whenever it gets to it.
        ours = self.popen is not None and self.popen.pid == pgid

        def gone() -> bool:
            self._alive(None)  # reap our leader, if it is ours
            return not group_members(pgid, include_zombies=ours)

        if not wait_until(gone, deadline):
            signal_group(pgid, signal.SIGKILL)
            wait_until(gone, time.monotonic() + 5.0)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5.0)
        self.clear_stale_pid_file()
        return self.exit_code()

    def _alive(self, record: PidRecord | None) -> bool:
        if self.popen is not None:
            self.popen.poll()  # reap it: a zombie would look alive to the group check
        return record is not None and record.matches(self.marker)

    def clear_stale_pid_file(self) -> None:
        if self.pid_path is not None:
            # Only remove the pid file if it does not describe a running process: a newer
            # start by another process keeps its own.
            record = PidRecord.read(self.pid_path)
            if record is None or not record.matches(self.marker):
                with contextlib.suppress(FileNotFoundError):
                    self.pid_path.unlink()
