"""The robustness suite's delay proxy (tests/chaos/delay_proxy.py), on its own: bytes
arrive intact and in order, each way late by the delay. No root needed: the proxy is
dialled directly here (the suite's NAT rules are what route Raft through it)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.chaos.delay_proxy import DelayProxy


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def round_trip(port: int, payload: bytes) -> tuple[bytes, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += sock.recv(65536)
        return got, time.monotonic() - started


def test_a_round_trip_through_the_proxy_is_late_by_the_delay_each_way_and_intact(
    echo_port: int,
) -> None:
    direct = round_trip(echo_port, b"ping")[1]
    proxy = DelayProxy([echo_port], delay_s=0.1).start()
    try:
        payload = bytes(range(256)) * 1024  # several chunks: order must hold
        got, took = round_trip(proxy.ports[echo_port], payload)
    finally:
        proxy.stop()
    assert got == payload
    assert took >= 0.2 > direct
    assert proxy.connections == 1


def test_stopping_the_proxy_closes_its_connections(echo_port: int) -> None:
    proxy = DelayProxy([echo_port], delay_s=0.01).start()
    sock = socket.create_connection(("127.0.0.1", proxy.ports[echo_port]), timeout=10)
    try:
        sock.sendall(b"x")
        assert sock.recv(1) == b"x"
        proxy.stop()
        assert sock.recv(1) == b""  # closed by the proxy: the nodes re-dial directly
    finally:
        sock.close()
