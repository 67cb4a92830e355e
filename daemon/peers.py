"""HTTP between members: asking a peer for its own view, and forwarding admin calls.

One pooled client per node, opened when the event loop runs. Peer reads carry the
internal token (derived from the Raft secret), so they work with anonymous reads off.
They go through a keep-alive aiohttp client (``daemon/keepalive.py``): each httpx GET
cost about 2 ms of CPU here against 0.35 ms, and ``/health/cluster`` makes one per peer
on the event loop that also answers ``/execute`` (BENCHMARKS, "Issue 16, sixth round").
https, forwarded admin calls and proxied environments stay on httpx.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

import httpx

from daemon.auth import internal_token
from daemon.directory import Directory
from daemon.errors import ApiError
from daemon.keepalive import NodeClient

PEER_TIMEOUT_S = 0.5
FORWARD_TIMEOUT_S = 30.0
# One client serves every peer: room for several /health/cluster callers at once, each
# asking every member of a 7-node cluster, without waiting for a free connection.
PEER_CONNECTIONS = 64


def peer_tls(tls_cert: str = "") -> ssl.SSLContext:
    """Peers' https URLs are verified (they receive the internal token and forwarded
    admin tokens): against the system CAs, SSL_CERT_FILE if set, and this node's own
    certificate, so a cluster sharing one self-signed certificate works (issue 14)."""
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or None)
    if tls_cert:
        context.load_verify_locations(cafile=tls_cert)
    return context


class Peers:
    def __init__(self, directory: Directory, raft_password: str, tls_cert: str = "") -> None:
        self._directory = directory
        self._auth = {"Authorization": f"Bearer {internal_token(raft_password)}"}
        self._tls_cert = tls_cert
        self._http: httpx.AsyncClient | None = None
        self._gets: NodeClient | None = None

    def open(self) -> None:
        self._http = httpx.AsyncClient(timeout=PEER_TIMEOUT_S, verify=peer_tls(self._tls_cert))
        self._gets = NodeClient(self._http, PEER_TIMEOUT_S, max_connections=PEER_CONNECTIONS)

    async def close(self) -> None:
        if self._gets is not None:
            await self._gets.aclose()  # and the httpx client it falls back to

    @property
    def is_open(self) -> bool:
        return self._http is not None

    async def node_view(self, url: str) -> dict | None:
        """The member's /health/node answer, or None if it does not answer in time."""
        assert self._gets is not None
        try:
            response = await self._gets.request("GET", f"{url}/health/node", headers=self._auth)
            if response.status_code == 200:
                return response.json()
        except (httpx.HTTPError, ValueError):
            pass
        return None

    async def commit_index_of(self, name: str) -> int:
        """The member's commit index, asked directly; raises if it cannot be had."""
        assert self._gets is not None
        answer = await self._gets.request(
            "GET", f"{self._directory.url_of(name)}/health/node", headers=self._auth
        )
        return int(answer.json()["commitIndex"])

    async def forward(
        self, name: str, method: str, path: str, auth: str | None, body: Any = None
    ) -> httpx.Response:
        """Send the caller's request, with the caller's token, to the named member."""
        assert self._http is not None
        headers = {"Authorization": auth} if auth else {}
        try:
            return await self._http.request(
                method,
                self._directory.url_of(name) + path,
                json=body,
                headers=headers,
                timeout=FORWARD_TIMEOUT_S,
            )
        except httpx.HTTPError as exc:
            raise ApiError(502, f"node '{name}' did not answer: {exc.__class__.__name__}") from None
