"""An HTTP client for one node: keep-alive GETs through aiohttp, with httpx for everything
else. The console's collector asks each node through one; a node asks its peers through
one (``daemon/peers.py``: ``/health/cluster`` and the read-index of a catch-up).

Issue 16: with ten clusters, about half of the collector's CPU went to httpx's
per-request machinery (request and response models, the connection pool's bookkeeping,
anyio's cancel scopes, header normalisation) for answers of a few hundred bytes. A node's
GETs (`/health/*`, `/metrics`, `/queue`, `/executions`) go instead through an aiohttp
`ClientSession` (its C HTTP parser and its connection pool), created lazily inside the
running loop, one per node client.

It is a drop-in for the `httpx.AsyncClient` that `DaemonClient.arequest` is given:
`request()` takes the same arguments and answers with an object carrying what
`DaemonClient` reads (`status_code`, `reason_phrase`, `json()`), and every failure is
raised as the httpx exception httpx would raise (`ConnectError`, `ConnectTimeout`,
`ReadTimeout`, `ReadError`, `RemoteProtocolError`), so callers see the same
`DaemonError`s. Unchanged from the httpx path:
  - timeouts: connecting bounded by the `httpx.Timeout`'s connect timeout, and each read
    of the answer by its read timeout (aiohttp's `sock_connect` / `sock_read`); waiting
    for a free connection and connecting together by pool + connect, at most what httpx
    allows; callers keep their own whole-call deadline on top. aiohttp has no write
    timeout: a GET's few hundred bytes go to the socket buffer at once;
  - headers: exactly the ones the caller passes (the bearer token, only to trusted
    hosts: `DaemonClient.headers_for` decides, as before), plus `Host` and
    `Accept: */*` as httpx writes them; no `User-Agent`, no `Accept-Encoding` (the
    nodes never compress, so nothing is decompressed either), no cookies;
  - no redirect followed (httpx follows none by default);
  - at most `max_connections` connections at once (the connector's `limit`). aiohttp
    has no cap on the idle count; idle connections are dropped after `keepalive_s`,
    below uvicorn's 5 s, so the client, not the node, closes them.
Sent to httpx instead, unchanged: `https` URLs (TLS stays httpx's verified context),
anything but a GET or a GET with a body, and every call when an HTTP(S)/ALL proxy was set
in the environment as the client was made (httpx honours those; the aiohttp session has
`trust_env=False`).

aiohttp drops a kept connection the node closed, retries a GET once when a connection
fails before an answer (RFC 9112 9.3.1.1: it is idempotent), and never puts back into
its pool a connection whose answer was not read to the end (failed or cancelled).
"""

from __future__ import annotations

import http
import json
import os
from collections.abc import Sequence
from typing import Any

import aiohttp
import httpx

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
# uvicorn closes a connection idle for 5 s; closing ours first avoids sending a GET on a
# connection the node is closing at that moment.
KEEPALIVE_S = 4.0


def proxy_configured() -> bool:
    """Whether httpx would route a request through a proxy from the environment."""
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in PROXY_VARIABLES)


class Answer:
    """What DaemonClient reads from an answer (the subset of httpx.Response it uses)."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(self, status_code: int, reason_phrase: str, headers: Any, content: bytes) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


def _as_httpx(err: aiohttp.ClientError) -> httpx.TransportError:
    """The httpx exception httpx raises for what aiohttp raised as `err`."""
    if isinstance(err, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout("")
    if isinstance(err, aiohttp.ServerTimeoutError):  # sock_read
        return httpx.ReadTimeout("")
    if isinstance(err, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(err.os_error) or type(err).__name__)
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError("Server disconnected without sending a response.")
    if isinstance(err, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )
    if isinstance(err, aiohttp.ClientResponseError):  # a malformed answer
        return httpx.RemoteProtocolError(str(err.message) or type(err).__name__)
    return httpx.ReadError(str(err) or type(err).__name__)


class NodeClient:
    """One node's connections (see the module docstring); `fallback` is the httpx client
    for whatever this client does not do itself."""

    def __init__(
        self,
        fallback: httpx.AsyncClient,
        timeout_s: float,
        max_connections: int = 8,
        max_keepalive: int = 6,
        keepalive_s: float = KEEPALIVE_S,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        self.fallback = fallback
        self.timeout = httpx.Timeout(timeout_s)
        self.max_connections = max_connections
        # Kept for the interface: aiohttp's connector cannot cap the idle count (at most
        # max_connections are ever kept, each for keepalive_s).
        self.max_keepalive = max_keepalive
        self.keepalive_s = keepalive_s
        self.trace_configs = list(trace_configs)  # tests count connections through these
        self.session: aiohttp.ClientSession | None = None
        self.timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}
        self.closed = False
        # Read once, as httpx reads the proxy variables when its client is made.
        self.proxied = proxy_configured()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Answer | httpx.Response:
        if method != "GET" or kwargs or not url.startswith("http://") or self.proxied:
            return await self.fallback.request(
                method, url, headers=headers, timeout=timeout, params=params, **kwargs
            )
        return await self.get(url, headers or {}, timeout or self.timeout, params)

    def _session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the running loop."""
        if self.session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=self.max_connections,
                keepalive_timeout=self.keepalive_s,
            )
            self.session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                trace_configs=self.trace_configs or None,
            )
        return self.session

    def _client_timeout(self, timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
        key = (timeout.connect, timeout.read, timeout.pool)
        found = self.timeouts.get(key)
        if found is None:
            pool_and_connect = (
                None
                if timeout.pool is None or timeout.connect is None
                else timeout.pool + timeout.connect
            )
            found = aiohttp.ClientTimeout(
                total=None,
                connect=pool_and_connect,
                sock_connect=timeout.connect,
                sock_read=timeout.read,
            )
            if len(self.timeouts) < 64:
                self.timeouts[key] = found
        return found

    async def get(
        self,
        url: str,
        headers: dict[str, str],
        timeout: httpx.Timeout,
        params: dict[str, Any] | None,
    ) -> Answer:
        if self.closed:
            raise httpx.ConnectError("this client is closed")
        try:
            async with self._session().get(
                url,
                headers=headers,
                params=params,
                timeout=self._client_timeout(timeout),
                allow_redirects=False,
            ) as response:
                body = await response.read()
        except aiohttp.ClientError as err:
            raise _as_httpx(err) from None
        reason = response.reason or ""
        if not reason:
            try:
                reason = http.HTTPStatus(response.status).phrase
            except ValueError:
                reason = ""
        return Answer(response.status, reason, response.headers, body)

    async def aclose(self) -> None:
        self.closed = True
        if self.session is not None:
            await self.session.close()
            self.session = None
        await self.fallback.aclose()
