"""daphne with limits: `python -m console.core.serve <daphne arguments>`.

daphne keeps an idle HTTP connection for twelve hours (Twisted's default) and accepts
any number of them, so a client that opens connections and sends nothing holds them
(issue 14, point 12). This entry point runs daphne's own command line with:

- IDLE_TIMEOUT_S: an HTTP connection that sends nothing (no request, or a request
  head that stalls) for this long is closed; WebSockets, once upgraded, are not
  affected (daphne pings those itself);
- MAX_CONNECTIONS: past this many open connections, new ones are closed at once.

Both can be set with CONSOLE_IDLE_TIMEOUT_S and CONSOLE_MAX_CONNECTIONS.
"""

from __future__ import annotations

import os
from typing import Any

from daphne import http_protocol
from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.ws_protocol import WebSocketProtocol
from twisted.web import http

IDLE_TIMEOUT_S = int(os.environ.get("CONSOLE_IDLE_TIMEOUT_S") or 15)
MAX_CONNECTIONS = int(os.environ.get("CONSOLE_MAX_CONNECTIONS") or 1000)

_original_timeout = http.HTTPChannel.timeoutConnection


def _upgraded(channel: http.HTTPChannel) -> bool:
    transport = channel.transport
    protocol = getattr(transport, "wrappedProtocol", None) or getattr(transport, "protocol", None)
    return isinstance(protocol, WebSocketProtocol)


def _timeout_connection(channel: http.HTTPChannel) -> None:
    # After a WebSocket upgrade the channel no longer sees the bytes, so its idle timer
    # says nothing about the connection: leave it to daphne's WebSocket pings. (Defensive:
    # daphne 4.2 does not leave the timer armed, but a version that did would cut the
    # live feed every IDLE_TIMEOUT_S; tests/console/core/test_hardening_live.py checks.)
    if not _upgraded(channel):
        _original_timeout(channel)


class LimitedHTTPFactory(http_protocol.HTTPFactory):
    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.timeOut = IDLE_TIMEOUT_S

    def buildProtocol(self, addr: Any) -> Any:
        open_now = sum(1 for c in self.server.connections.values() if "disconnected" not in c)
        if open_now >= MAX_CONNECTIONS:
            return None  # Twisted closes the connection
        return super().buildProtocol(addr)


def main() -> None:
    http.HTTPChannel.timeoutConnection = _timeout_connection  # type: ignore[method-assign]
    daphne_server.HTTPFactory = LimitedHTTPFactory  # type: ignore[misc]
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
