"""A deadline for request heads, which uvicorn does not have.

uvicorn closes an idle keep-alive connection, but a connection that is opened and then
sends nothing, or a byte every few seconds, is held for ever: a few thousand of them
exhaust the node's file descriptors. :func:`protocol_with_deadline` wraps uvicorn's HTTP
protocol so a connection must start a request within `deadline_s` of connecting and of
its previous request; one that does not is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # httptools is optional for uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


def protocol_with_deadline(deadline_s: float) -> type:
    class DeadlineProtocol(_Base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._last_cycle: Any = None
            self._deadline = self.loop.call_later(deadline_s, self._check_deadline)

        def _check_deadline(self) -> None:
            cycle = self.cycle
            busy = cycle is not None and not cycle.response_complete
            if busy or (cycle is not None and cycle is not self._last_cycle):
                # A request is running, or one started since the last check: fine.
                self._last_cycle = cycle
                self._deadline = self.loop.call_later(deadline_s, self._check_deadline)
            elif not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadline.cancel()
            super().connection_lost(exc)

    return DeadlineProtocol
