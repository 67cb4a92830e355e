"""Run several processes like foreman/honcho: one prefixed, colored log stream, and a stop
that leaves nothing behind.

Every process is a daemon.localcluster ProcessHandle: it leads its own process group
(so stopping it reaches everything it forked, daphne's or Celery's workers, and a Ctrl-C
in the terminal reaches only us) and writes its own log file, which we follow into the
stream. The console's processes die with us even if we are SIGKILLed; daemon nodes are
only watched: they outlive a console restart, another process (the node manager) may
restart one, and we stop them with everything else on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from daemon.localcluster import LogFollower, ProcessHandle, describe_exit
from daemon.localcluster.process import group_members, signal_group

_COLORS = ["36", "33", "32", "35", "34", "96", "93"]


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Child:
    spec: ProcessSpec
    handle: ProcessHandle
    color: str
    # A console process that exits is a failure of the run; a node may be stopped and
    # started again by the node manager, so its exit is only reported.
    fatal: bool = True
    was_running: bool = True
    last_pid: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pgid(self) -> int | None:
        # start_new_session: a started process leads its own group.
        return self.handle.popen.pid if self.handle.popen is not None else self.handle.pid


class Supervisor:
    def __init__(
        self,
        cwd: Path,
        out: TextIO = sys.stdout,
        color: bool | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.cwd = cwd
        self.out = out
        self.color = out.isatty() and "NO_COLOR" not in os.environ if color is None else color
        self.log_dir = log_dir if log_dir is not None else Path(tempfile.mkdtemp(prefix="up-"))
        self.children: list[Child] = []
        self.name_width = len("collector")  # the longest name we start, so columns line up
        self._colors: dict[str, str] = {}
        self._write_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._force = threading.Event()
        self.unexpected_exits: list[str] = []
        self.follower = LogFollower(self._emit)
        self._following = False

    # -- output ----------------------------------------------------------------------

    def say(self, text: str, name: str = "up", color: str = "1") -> None:
        prefix = f"{name:<{self.name_width}} |"
        if self.color:
            prefix = f"\033[{color}m{prefix}\033[0m"
        with self._write_lock:
            self.out.write(f"{prefix} {text}\n")
            self.out.flush()

    def reserve_width(self, names: list[str]) -> None:
        """Line the prefix column up for names that will come, before the first line."""
        self.name_width = max([self.name_width, *(len(name) for name in names)])

    def warn(self, text: str) -> None:
        self.say(text, color="1;31")

    def _emit(self, name: str, line: str) -> None:
        self.say(line, name=name, color=self._colors.get(name, "0"))

    def _color_for(self, name: str) -> str:
        color = _COLORS[len(self._colors) % len(_COLORS)]
        self._colors[name] = color
        self.name_width = max(self.name_width, len(name))
        return color

    # -- lifecycle -------------------------------------------------------------------

    def start_all(self, specs: list[ProcessSpec]) -> None:
        """Start every process, each with its log file followed into the stream.

        All spawns happen before the follower thread exists: preexec_fn (die with us) is
        only safe in a process without other threads.
        """
        for spec in specs:
            handle = ProcessHandle(
                spec.name,
                spec.argv,
                self.log_dir / f"{spec.name}.log",
                cwd=self.cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
                die_with_parent=True,
            )
            child = Child(spec, handle, self._color_for(spec.name))
            self.follower.follow(spec.name, handle.log_path)
            child.last_pid = handle.start()
            self.children.append(child)
            self.say(f"started {spec.name} (pid {child.pgid}): {' '.join(spec.argv)}")
        if not self._following:
            self._following = True
            self.follower.start()

    def watch(
        self, name: str, handle: ProcessHandle, start: Callable[[], object] | None = None
    ) -> None:
        """Watch a process someone else may restart (a daemon node), starting it first
        with `start` if given (a node's own start, which picks the release it runs):
        follow its log, report when it stops or comes back, stop it with the rest. Call
        before start_all (no preexec_fn here, but the follower starts there)."""
        self.follower.follow(name, handle.log_path)  # before it starts: no line missed
        if start is not None:
            start()
        child = Child(ProcessSpec(name, handle.argv), handle, self._color_for(name), fatal=False)
        child.last_pid = handle.pid
        child.was_running = child.last_pid is not None
        self.children.append(child)

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
        return [child for child in self.children if child.handle.running()]

    def supervise(self, when_ready: Callable[[], bool], tick_s: float = 0.2) -> None:
        """Watch the processes until a stop is requested or none is left running.

        `when_ready` is called each tick until it returns True once (it prints the
        banner); processes that exit on their own are reported as they go.
        """
        ready = False
        while not self._stop_requested.wait(tick_s):
            for child in self.children:
                self._report(child)
            if not any(child.handle.running() for child in self.children if child.fatal):
                self.warn("!! every process has exited; stopping")
                return
            if not ready:
                ready = when_ready()

    def _report(self, child: Child) -> None:
        pid = child.handle.pid
        running = pid is not None
        if running and child.was_running and pid != child.last_pid:
            # Restarted between two ticks (by the node manager, say).
            self.say(f"{child.name} was restarted (pid {child.last_pid} -> {pid})")
        if pid is not None:
            child.last_pid = pid
        if running == child.was_running:
            return
        child.was_running = running
        if running:
            self.say(f"{child.name} is running again (pid {pid})")
            return
        code = child.handle.exit_code()
        how = describe_exit(code) if code is not None else "stopped"
        if child.fatal:
            message = f"{child.name} exited unexpectedly ({how})"
            self.unexpected_exits.append(message)
            self.warn(f"!! {message}")
        else:
            self.warn(f"{child.name} is not running ({how})")

    def stop_all(self, grace_s: float = 10.0) -> None:
        """Stop every process and everything it forked.

        SIGTERM goes to each leader first, so a parent with workers (Celery) shuts them
        down its own way; then to each whole group for whatever a leader left behind;
        SIGKILL for anything still there after the grace period.
        """
        live = [child for child in self.children if child.handle.running()]
        # Taken now: a group outlives its leader, and a watched node's leader is only
        # found through its pid file while it runs.
        groups = {child.name: child.pgid for child in self.children if child.pgid is not None}
        if live:
            self.say("stopping: SIGTERM to " + ", ".join(child.name for child in live))
        for child in live:
            child.handle.send(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        self._wait_until(lambda: not self.running(), deadline)
        for pgid in groups.values():
            signal_group(pgid, signal.SIGTERM)

        def none_left() -> bool:
            # Zombies count: the leaders are ours to reap, and we wait until we have.
            return not any(group_members(pgid, True) for pgid in groups.values())

        if not self._wait_until(none_left, deadline):
            stubborn = [name for name, pgid in groups.items() if group_members(pgid, True)]
            self.warn(f"still running after {grace_s:.0f}s, SIGKILL: {', '.join(stubborn)}")
            for pgid in groups.values():
                signal_group(pgid, signal.SIGKILL)
            self._wait_until(none_left, time.monotonic() + 5.0, False)
        for child in self.children:
            child.handle.clear_stale_pid_file()
        if self._following:
            self.follower.stop()
        else:
            self.follower.poll(final=True)
        self.say("all processes stopped")

    def _wait_until(
        self, condition: Callable[[], bool], deadline: float, forceable: bool = True
    ) -> bool:
        while time.monotonic() < deadline:
            for child in self.children:
                child.handle.running()  # reaps our leaders: a zombie keeps its group alive
            if condition():
                return True
            if forceable and self._force.is_set():
                return False
            time.sleep(0.05)
        return False
