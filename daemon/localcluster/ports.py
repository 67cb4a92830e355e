"""Ports for local nodes: free now, and kept free for them across processes.

A port that bind(0) returned and released can be taken before its node binds it, or
while that node is stopped for a restart: by an outgoing connection's source port (they
come from the kernel's ephemeral range), or handed to another process by its own
bind(0). A busy test run (parallel workers, thousands of connections) saw both: "Address
already in use" at a node's start, and a restarted node whose Raft port was gone.

So ports come from below the ephemeral range, where no source port lands, and each one
handed out is reserved by a file created with O_EXCL in a directory every process of
this user shares: no other process hands it out again for RESERVATION_S. A process that
dies leaves its reservations to expire. Where the ephemeral range leaves no room below
it, bind(0) is the fallback.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import tempfile
import time
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PORT_FLOOR = 16_000  # above the well-known services' ports
MIN_SPAN = 4_000  # fewer free ports than this below the ephemeral range: use bind(0)
# Longer than any test or scenario that stops a node and starts it again on its port.
RESERVATION_S = 3600.0
ATTEMPTS = 200

_handed_out: set[int] = set()
_random = random.SystemRandom()


def reservations_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"raftops-ports-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that is free now and that no process of this user handed out
    in the last RESERVATION_S (this one included: two nodes never share a port)."""
    span = reserved_span()
    if span is not None:
        low, high = span
        for _ in range(ATTEMPTS):
            port = _random.randrange(low, high)
            if port not in _handed_out and reserve(port) and port_is_free(port, host):
                _handed_out.add(port)
                return port
    return _ephemeral_port(host)


def reserved_span() -> tuple[int, int] | None:
    """[low, high) below the kernel's ephemeral range, or None if it leaves no room."""
    try:
        ephemeral_low = int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if ephemeral_low - PORT_FLOOR < MIN_SPAN:
        return None
    return PORT_FLOOR, ephemeral_low


def reserve(port: int, now: float | None = None) -> bool:
    """True if this call reserved `port`: no live reservation of it existed."""
    path = reservations_dir() / str(port)
    now = time.time() if now is None else now
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime < RESERVATION_S:
                    return False
                path.unlink()  # expired: whoever reserved it is long done with it
            continue
        except OSError:
            return False  # no shared directory to write: let port_is_free decide alone
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        return True
    return False


def _ephemeral_port(host: str) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
