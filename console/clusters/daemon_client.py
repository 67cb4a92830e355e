"""A small HTTP client for the daemon API (docs/daemon-api.md), sync and async.

Every failure becomes a `DaemonError` with a one-line message, so callers (API proxy,
runbook tasks, the collector) can show it as it is. `status` is the daemon's HTTP status,
or None when no answer came back; `connect_failed` says the request never reached the
node, which is the only case where trying another node cannot do the work twice.
"""

from __future__ import annotations

from typing import Any

import httpx

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 5.0


class DaemonError(Exception):
    def __init__(
        self, message: str, status: int | None = None, *, connect_failed: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.connect_failed = connect_failed

    @property
    def unreachable(self) -> bool:
        return self.status is None


def node_urls(cluster: Any) -> list[str]:
    """HTTP URLs to try, best first: the leader, other reachable nodes, the rest, seeds."""
    nodes = sorted(
        cluster.nodes.filter(removed=False),
        key=lambda n: (n.name != cluster.leader_name, not n.reachable, n.name),
    )
    urls = [n.http_url for n in nodes] + list(cluster.seed_urls or [])
    return list(dict.fromkeys(url.rstrip("/") for url in urls if url))


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _error_from(response: httpx.Response, url: str) -> DaemonError:
    try:
        body = response.json()
        detail = body.get("error") if isinstance(body, dict) else None
    except ValueError:
        detail = None
    detail = detail or response.reason_phrase or "error"
    return DaemonError(_one_line(f"{url}: {detail}"), response.status_code)


def _decode(response: httpx.Response, url: str) -> Any:
    if response.status_code >= 400:
        raise _error_from(response, url)
    try:
        return response.json()
    except ValueError:
        raise DaemonError(f"{url}: answered with something that is not JSON", 502) from None


def _transport_error(err: httpx.HTTPError, url: str) -> DaemonError:
    connect_failed = isinstance(err, httpx.ConnectError | httpx.ConnectTimeout)
    reason = type(err).__name__ if not str(err) else str(err)
    return DaemonError(_one_line(f"{url}: {reason}"), None, connect_failed=connect_failed)


class DaemonClient:
    """Talks to the nodes of one cluster with the token of `role` (read from the env).

    The token goes only to URLs whose host the cluster trusts (its seed URLs' hosts and
    `trusted_hosts`): any other URL, such as a member a daemon reports, gets no token."""

    def __init__(
        self, cluster: Any, read_timeout_s: float = READ_TIMEOUT_S, role: str = "admin"
    ) -> None:
        self.cluster = cluster
        self.timeout = httpx.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S)
        token_for = getattr(cluster, "token_for", None)
        token = token_for(role) if token_for else getattr(cluster, "api_token", "")
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self.headers = self._auth

    def headers_for(self, url: str) -> dict[str, str]:
        trusts = getattr(self.cluster, "trusts_url", None)
        if self._auth and trusts is not None and not trusts(url):
            return {}
        return self._auth

    def request(self, method: str, url: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, url, path, **kwargs)[1]

    def call(self, method: str, url: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """Like `request`, with the daemon's status code (201 vs 200 tells created from updated)."""
        full = url.rstrip("/") + path
        timeout = kwargs.pop("timeout", self.timeout)
        try:
            response = httpx.request(
                method, full, headers=self.headers_for(full), timeout=timeout, **kwargs
            )
        except httpx.HTTPError as err:
            raise _transport_error(err, full) from None
        return response.status_code, _decode(response, full)

    def get(self, url: str, path: str, params: dict | None = None) -> Any:
        return self.request("GET", url, path, params=params)

    def post(self, url: str, path: str, json: Any = None) -> Any:
        return self.request("POST", url, path, json=json)

    def delete(self, url: str, path: str) -> Any:
        return self.request("DELETE", url, path)

    async def arequest(
        self,
        method: str,
        url: str,
        path: str,
        client: httpx.AsyncClient | None = None,
        timeout_s: float | None = None,
        **kw: Any,
    ) -> Any:
        """`client` reuses a pooled connection (the collector); `timeout_s` caps the whole
        call, so a poll of a node that accepts but never answers ends on time."""
        full = url.rstrip("/") + path
        timeout = httpx.Timeout(timeout_s) if timeout_s else self.timeout
        try:
            if client is not None:
                response = await client.request(
                    method, full, headers=self.headers_for(full), timeout=timeout, **kw
                )
            else:
                async with httpx.AsyncClient(timeout=timeout) as own:
                    response = await own.request(method, full, headers=self.headers_for(full), **kw)
        except httpx.HTTPError as err:
            raise _transport_error(err, full) from None
        return _decode(response, full)

    async def aget(
        self,
        url: str,
        path: str,
        params: dict | None = None,
        client: Any = None,
        timeout_s: float | None = None,
    ) -> Any:
        return await self.arequest(
            "GET", url, path, client=client, timeout_s=timeout_s, params=params
        )

    async def apost(self, url: str, path: str, json: Any = None, client: Any = None) -> Any:
        return await self.arequest("POST", url, path, client=client, json=json)
