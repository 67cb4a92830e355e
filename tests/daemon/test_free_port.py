"""Ports for local nodes come from below the kernel's ephemeral range (no outgoing
connection's source port lands there) and are reserved across processes, so nothing
takes a node's port between being handed out and being bound, or while the node is
stopped for a restart (a busy test run saw "Address already in use", and a restarted
node without its Raft port)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from daemon.localcluster import ports


@pytest.fixture
def span() -> tuple[int, int]:
    found = ports.reserved_span()
    if found is None:  # a kernel whose ephemeral range starts low: bind(0) is the fallback
        pytest.skip("the ephemeral range leaves no room below it on this machine")
    return found


def test_ports_come_from_below_the_ephemeral_range_and_are_never_handed_out_twice(
    span: tuple[int, int],
) -> None:
    handed = [ports.free_port() for _ in range(20)]

    assert len(set(handed)) == 20
    assert all(span[0] <= p < span[1] for p in handed)
    assert all(ports.port_is_free(p) for p in handed)


def test_another_process_never_gets_a_port_this_one_reserved(span: tuple[int, int]) -> None:
    mine = {ports.free_port() for _ in range(50)}
    code = (
        "from daemon.localcluster import ports\n"
        "print(' '.join(str(ports.free_port()) for _ in range(300)))"
    )
    theirs = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()

    assert len(theirs) == 300 and not mine & {int(p) for p in theirs}


def test_a_reservation_holds_until_it_expires(span: tuple[int, int]) -> None:
    port = ports.free_port()
    now = time.time()

    assert not ports.reserve(port, now=now)
    assert not ports.reserve(port, now=now + ports.RESERVATION_S - 60)
    assert ports.reserve(port, now=now + ports.RESERVATION_S + 60)


def test_a_port_someone_holds_is_skipped(
    span: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        busy = held.getsockname()[1]
        picks = iter([busy, busy, busy])
        monkeypatch.setattr(ports, "reserved_span", lambda: (busy, busy + 1))
        monkeypatch.setattr(ports._random, "randrange", lambda low, high: next(picks, busy))
        monkeypatch.setattr(ports, "reserve", lambda port, now=None: True)

        got = ports.free_port()

    assert got != busy
