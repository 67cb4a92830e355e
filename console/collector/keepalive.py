"""The collector's HTTP client for one node: plain keep-alive HTTP/1.1 GETs on asyncio
streams, with httpx for everything else.

Issue 16: with ten clusters, about half of the collector's CPU went to httpx's
per-request machinery (request and response models, the connection pool's bookkeeping,
anyio's cancel scopes, header normalisation) for answers of a few hundred bytes. A node's
GETs (`/health/*`, `/metrics`, `/queue`, `/executions`) need none of it: this client
writes the request line and headers itself, reads the status line, headers and a
`Content-Length` or chunked body, and keeps the connection for the next GET.

It is a drop-in for the `httpx.AsyncClient` that `DaemonClient.arequest` is given:
`request()` takes the same arguments and answers with an object carrying what
`DaemonClient` reads (`status_code`, `reason_phrase`, `json()`), and every failure is
raised as the httpx exception httpx would raise (`ConnectError`, `ConnectTimeout`,
`ReadTimeout`, `WriteTimeout`, `ReadError`, `WriteError`, `RemoteProtocolError`), so
callers see the same `DaemonError`s. Unchanged from the httpx path:
  - timeouts: the connect, write and read phases each bounded as `httpx.Timeout` says
    (each read of the answer by the read timeout, as httpx does); callers keep their
    own whole-call deadline on top;
  - headers: exactly the ones the caller passes (the bearer token, only to trusted
    hosts: `DaemonClient.headers_for` decides, as before), and `Host` as httpx writes it;
  - at most `max_connections` connections at once and `max_keepalive` kept idle.
Sent to httpx instead, unchanged: `https` URLs (TLS stays httpx's verified context),
anything but a GET or a GET with a body, and every call when an HTTP(S)/ALL proxy was set
in the environment as the client was made (httpx honours those; this client does not).

A kept connection the node closed meanwhile (uvicorn drops idle ones after 5 s) is
found closed before use and dropped; one that fails before any byte of an answer came
back is retried once on a new connection (a GET, so the retry cannot do anything twice).
A call that fails or is cancelled in the middle closes its connection: it never goes
back to the pool half read.
"""

from __future__ import annotations

import asyncio
import http
import json
import os
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
READ_CHUNK = 64 * 1024
MAX_HEAD = 64 * 1024


def proxy_configured() -> bool:
    """Whether httpx would route a request through a proxy from the environment."""
    return any(os.environ.get(name) or os.environ.get(name.upper()) for name in PROXY_VARIABLES)


class Answer:
    """What DaemonClient reads from an answer (the subset of httpx.Response it uses)."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str, headers: dict[str, str], content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class _NoAnswer(Exception):
    """The connection ended before any byte of an answer: a kept connection the node
    had closed; the GET may be retried once on a new one."""


class _Connection:
    __slots__ = ("buffer", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = b""

    def usable(self) -> bool:
        return not (self.writer.is_closing() or self.reader.at_eof() or self.buffer)

    def close(self) -> None:
        self.writer.close()

    async def read(self, timeout_s: float | None) -> bytes:
        try:
            async with asyncio.timeout(timeout_s):
                return await self.reader.read(READ_CHUNK)
        except TimeoutError:
            raise httpx.ReadTimeout("") from None
        except OSError as err:
            if not self.buffer and isinstance(err, ConnectionResetError):
                raise _NoAnswer from None  # reset before any byte of an answer
            raise httpx.ReadError(str(err) or type(err).__name__) from None

    async def read_head(self, timeout_s: float | None) -> tuple[int, str, dict[str, str]]:
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise httpx.RemoteProtocolError("answer head too long")
            data = await self.read(timeout_s)
            if not data:
                if not self.buffer:
                    raise _NoAnswer
                raise httpx.RemoteProtocolError("peer closed connection in the answer head")
            self.buffer += data
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        status_line, *lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise httpx.RemoteProtocolError(f"malformed status line {status_line[:80]!r}")
        headers: dict[str, str] = {"_version": parts[0]}
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep:
                raise httpx.RemoteProtocolError("malformed header line")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        return status, reason, headers

    async def read_exactly(self, size: int, timeout_s: float | None) -> bytes:
        while len(self.buffer) < size:
            data = await self.read(timeout_s)
            if not data:
                raise httpx.RemoteProtocolError("peer closed connection without sending the body")
            self.buffer += data
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return body

    async def read_line(self, timeout_s: float | None) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            data = await self.read(timeout_s)
            if not data:
                raise httpx.RemoteProtocolError("peer closed connection in a chunked body")
            self.buffer += data
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    async def read_body(self, headers: dict[str, str], timeout_s: float | None) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size_line = await self.read_line(timeout_s)
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise httpx.RemoteProtocolError("malformed chunk size") from None
                if size == 0:
                    while await self.read_line(timeout_s):  # trailers, then the empty line
                        pass
                    return b"".join(chunks)
                chunks.append(await self.read_exactly(size, timeout_s))
                await self.read_exactly(2, timeout_s)
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise httpx.RemoteProtocolError("malformed Content-Length") from None
            return await self.read_exactly(size, timeout_s)
        # Neither: the body runs to the end of the connection.
        headers["connection"] = "close"
        while data := await self.read(timeout_s):
            self.buffer += data
        body, self.buffer = self.buffer, b""
        return body


def _keeps_alive(headers: dict[str, str]) -> bool:
    connection = headers.get("connection", "").lower()
    if headers.get("_version") == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


class NodeClient:
    """One node's connections (see the module docstring); `fallback` is the httpx client
    for whatever this client does not do itself."""

    def __init__(
        self,
        fallback: httpx.AsyncClient,
        timeout_s: float,
        max_connections: int = 8,
        max_keepalive: int = 6,
    ) -> None:
        self.fallback = fallback
        self.timeout = httpx.Timeout(timeout_s)
        self.idle: list[_Connection] = []
        self.max_keepalive = max_keepalive
        self.slots = asyncio.Semaphore(max_connections)
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

    async def get(
        self,
        url: str,
        headers: dict[str, str],
        timeout: httpx.Timeout,
        params: dict[str, Any] | None,
    ) -> Answer:
        parts = urlsplit(url)
        target = parts.path or "/"
        query = "&".join(q for q in (parts.query, urlencode(params) if params else "") if q)
        if query:
            target = f"{target}?{query}"
        host = parts.hostname or ""
        port = parts.port or 80
        netloc = parts.netloc.rpartition("@")[2]
        if netloc.endswith(":80") and parts.port == 80:
            netloc = netloc[: -len(":80")]  # as httpx writes it: no default port
        lines = [f"GET {target} HTTP/1.1", f"Host: {netloc}", "Accept: */*"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self.closed:
            raise httpx.ConnectError("the collector's client is closed")
        try:
            async with asyncio.timeout(timeout.pool):
                await self.slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("") from None
        try:
            for attempt in range(2):
                conn, reused = await self._connection(host, port, timeout.connect)
                try:
                    answer = await self._exchange(conn, request, timeout)
                except _NoAnswer:
                    conn.close()
                    if reused and attempt == 0:
                        continue  # a kept connection the node had closed: once more, anew
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    ) from None
                except BaseException:
                    conn.close()  # half read, or cancelled: never reused
                    raise
                if _keeps_alive(answer.headers) and len(self.idle) < self.max_keepalive:
                    self.idle.append(conn)
                else:
                    conn.close()
                return answer
            raise AssertionError("unreachable")
        finally:
            self.slots.release()

    async def _connection(
        self, host: str, port: int, timeout_s: float | None
    ) -> tuple[_Connection, bool]:
        while self.idle:
            conn = self.idle.pop()
            if conn.usable():
                return conn, True
            conn.close()
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout("") from None
        except OSError as err:
            raise httpx.ConnectError(str(err) or type(err).__name__) from None
        return _Connection(reader, writer), False

    async def _exchange(self, conn: _Connection, request: bytes, timeout: httpx.Timeout) -> Answer:
        try:
            conn.writer.write(request)
            async with asyncio.timeout(timeout.write):
                await conn.writer.drain()
        except TimeoutError:
            raise httpx.WriteTimeout("") from None
        except OSError:
            raise _NoAnswer from None  # the node closed it: nothing was answered
        status, reason, headers = await conn.read_head(timeout.read)
        while 100 <= status < 200:  # an interim answer (none is asked for): the next one
            status, reason, headers = await conn.read_head(timeout.read)
        # An answer that has no body by definition (RFC 9112 6.3), whatever it says.
        no_body = status in (204, 304)
        body = b"" if no_body else await conn.read_body(headers, timeout.read)
        if not reason:
            try:
                reason = http.HTTPStatus(status).phrase
            except ValueError:
                reason = ""
        return Answer(status, reason, headers, body)

    async def aclose(self) -> None:
        self.closed = True
        for conn in self.idle:
            conn.close()
        self.idle.clear()
        await self.fallback.aclose()
