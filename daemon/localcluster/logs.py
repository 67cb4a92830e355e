"""Follow several log files into one stream, like `tail -F` on each, in one thread.

Processes write their own log files (so they can outlive whoever watches them); a
foreground command that wants their output on its terminal follows the files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class _Followed:
    name: str
    path: Path
    offset: int
    partial: bytes = b""


class LogFollower:
    """Calls `emit(name, line)` for every line appended to a followed file."""

    def __init__(self, emit: Callable[[str, str], None], interval_s: float = 0.1) -> None:
        self.emit = emit
        self.interval_s = interval_s
        self._files: list[_Followed] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, name: str, path: Path, from_start: bool = False) -> None:
        """Follow `path` from its current end (what it holds already is old news), or from
        its start; a file that does not exist yet is followed once it appears."""
        offset = 0
        if not from_start:
            try:
                offset = path.stat().st_size
            except OSError:
                offset = 0
        with self._lock:
            self._files.append(_Followed(name, path, offset))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Emit what is left (the last lines of stopped processes), then end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.poll(final=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def poll(self, final: bool = False) -> None:
        with self._lock:
            files = list(self._files)
        for followed in files:
            self._read(followed, final)

    def _read(self, followed: _Followed, final: bool) -> None:
        try:
            with followed.path.open("rb") as handle:
                handle.seek(0, 2)
                if handle.tell() < followed.offset:  # truncated or replaced: start over
                    followed.offset, followed.partial = 0, b""
                handle.seek(followed.offset)
                data = handle.read()
        except OSError:
            return
        followed.offset += len(data)
        lines = (followed.partial + data).split(b"\n")
        followed.partial = lines.pop()
        if final and followed.partial:
            lines.append(followed.partial)
            followed.partial = b""
        for raw in lines:
            self.emit(followed.name, raw.decode("utf-8", "replace").rstrip("\r"))
