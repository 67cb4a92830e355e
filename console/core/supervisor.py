"""Run several child processes like foreman/honcho: one prefixed, colored log stream, and
a stop that leaves nothing behind.

Each child leads its own process group, so stopping it reaches everything it forked
(daphne's or Celery's workers) and a Ctrl-C in the terminal reaches only us: we then stop
the groups in order, SIGTERM first and SIGKILL after a grace period.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

_COLORS = ["36", "33", "32", "35", "34", "96", "93"]
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    color: str
    reader: threading.Thread | None = None

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session makes the child its group's leader


def _die_with_parent() -> None:
    # If the supervisor is killed outright (SIGKILL), each group leader gets SIGTERM
    # instead of living on as an orphan.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _any_alive(groups: list[int]) -> bool:
    return any(_group_alive(pgid) for pgid in groups)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


class Supervisor:
    def __init__(self, cwd: Path, out: TextIO = sys.stdout, color: bool | None = None) -> None:
        self.cwd = cwd
        self.out = out
        self.color = out.isatty() and "NO_COLOR" not in os.environ if color is None else color
        self.children: list[Child] = []
        self.name_width = len("collector")  # the longest name we start, so columns line up
        self._write_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._force = threading.Event()
        self.unexpected_exits: list[str] = []

    # -- output ----------------------------------------------------------------------

    def say(self, text: str, name: str = "up", color: str = "1") -> None:
        prefix = f"{name:<{self.name_width}} |"
        if self.color:
            prefix = f"\033[{color}m{prefix}\033[0m"
        with self._write_lock:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()

    def warn(self, text: str) -> None:
        self.say(text, color="1;31")

    def _pump(self, child: Child) -> None:
        assert child.process.stdout is not None
        for raw in iter(child.process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.say(line, name=child.spec.name, color=child.color)

    # -- lifecycle -------------------------------------------------------------------

    def start_all(self, specs: list[ProcessSpec]) -> None:
        """Start every child, then their log readers.

        All spawns happen before any reader thread exists: preexec_fn is only safe in a
        process without other threads.
        """
        self.name_width = max([self.name_width, *(len(spec.name) for spec in specs)])
        for index, spec in enumerate(specs):
            process = subprocess.Popen(
                spec.argv,
                cwd=self.cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            self.children.append(Child(spec, process, _COLORS[index % len(_COLORS)]))
        for child in self.children:
            self.say(f"started {child.spec.name} (pid {child.pgid}): {' '.join(child.spec.argv)}")
            child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.reader.start()

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._stop_requested.is_set():
            self._force.set()  # a second Ctrl-C: stop waiting politely
        self._stop_requested.set()

    def request_stop(self) -> None:
        self._stop_requested.set()

    def running(self) -> list[Child]:
        return [child for child in self.children if child.process.poll() is None]

    def supervise(self, when_ready: Callable[[], bool], tick_s: float = 0.2) -> None:
        """Watch the children until a stop is requested or none is left running.

        `when_ready` is called each tick until it returns True once (it prints the
        banner); children that exit on their own are reported as they go.
        """
        ready = False
        reported: set[int] = set()
        while not self._stop_requested.wait(tick_s):
            for child in self.children:
                code = child.process.poll()
                if code is not None and child.pgid not in reported:
                    reported.add(child.pgid)
                    message = f"{child.spec.name} exited unexpectedly ({describe_exit(code)})"
                    self.unexpected_exits.append(message)
                    self.warn(f"!! {message}")
            if not self.running():
                self.warn("!! every process has exited; stopping")
                return
            if not ready:
                ready = when_ready()

    def stop_all(self, grace_s: float = 10.0) -> None:
        """Stop every child and everything it forked.

        SIGTERM goes to each leader first, so a parent with workers (Celery, the daemon
        cluster) shuts them down its own way; then to each whole group for whatever a
        leader left behind; SIGKILL for anything still there after the grace period.
        """
        groups = [child.pgid for child in self.children]
        if any(_group_alive(pgid) for pgid in groups):
            self.say("stopping: SIGTERM to " + ", ".join(c.spec.name for c in self.children))
        for child in self.running():
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        self._wait_until(lambda: not self.running(), deadline)
        for pgid in groups:
            _signal_group(pgid, signal.SIGTERM)
        if not self._wait_until(lambda: not _any_alive(groups), deadline):
            stubborn = [c.spec.name for c in self.children if _group_alive(c.pgid)]
            self.warn(f"still running after {grace_s:.0f}s, SIGKILL: {', '.join(stubborn)}")
            for pgid in groups:
                _signal_group(pgid, signal.SIGKILL)
            self._wait_until(lambda: not _any_alive(groups), time.monotonic() + 5.0, False)
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2.0)
        self.say("all processes stopped")

    def _wait_until(
        self, condition: Callable[[], bool], deadline: float, forceable: bool = True
    ) -> bool:
        while time.monotonic() < deadline:
            for child in self.children:
                child.process.poll()  # reap leaders, or their zombies keep the group alive
            if condition():
                return True
            if forceable and self._force.is_set():
                return False
            time.sleep(0.05)
        return False
