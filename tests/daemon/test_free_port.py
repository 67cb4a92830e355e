"""Ports for local nodes come from below the kernel's ephemeral range, where no outgoing
connection's source port and no bind(0) lands, so nothing takes them by chance between
being handed out and being bound (a busy test run once saw "Address already in use")."""

from __future__ import annotations

import socket

import pytest

from daemon.localcluster import layout


def ephemeral_low() -> int:
    return int(layout.EPHEMERAL_RANGE_FILE.read_text().split()[0])


def test_ports_come_from_below_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    ports = [layout.free_port() for _ in range(20)]

    assert len(set(ports)) == 20
    assert all(layout.PORT_FLOOR <= p < ephemeral_low() for p in ports)
    for port in ports:
        assert layout.port_is_free(port)


def test_a_port_someone_holds_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    candidates = range(layout.PORT_FLOOR, ephemeral_low())
    busy = next(p for p in candidates if p not in layout._handed_out and layout.port_is_free(p))
    with socket.socket() as held:
        held.bind(("127.0.0.1", busy))
        monkeypatch.setattr(layout, "_next_port", busy)  # the scan reaches it next

        got = layout.free_port()

    assert got != busy and busy not in layout._handed_out


def test_parallel_test_workers_start_their_scans_in_separate_slots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lo, hi = layout.PORT_FLOOR, ephemeral_low()
    block = (hi - lo) // layout.WORKER_SLOTS
    starts = []
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        starts.append(layout._scan_start(lo, hi))

    assert [(s - lo) // block for s in starts] == [0, 1, 2]
