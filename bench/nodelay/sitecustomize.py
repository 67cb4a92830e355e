"""EXPERIMENT ONLY (bench --tcp-nodelay-patch): what the daemon would do with TCP_NODELAY.

daemon/server.py creates its HTTP listening socket as socket(family, SOCK_STREAM)
with proto 0. asyncio only sets TCP_NODELAY on accepted sockets whose proto is
IPPROTO_TCP, so the daemon's connections keep Nagle on; uvicorn writes headers
and body separately, and every keep-alive request then waits ~40 ms for the
client's delayed ACK. This file, put first on the node's PYTHONPATH by the
benchmark, makes asyncio set TCP_NODELAY regardless of proto. It changes no
file in daemon/.
"""

import asyncio.base_events
import socket


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in {socket.AF_INET, socket.AF_INET6} and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


asyncio.base_events._set_nodelay = _set_nodelay
