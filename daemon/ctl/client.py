"""daemonctl's HTTP client: one request to the first node that answers, errors as one line."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from daemon.ctl.errors import PROG, CliError, UsageError

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 30.0


def _reason(exc: httpx.HTTPError) -> str:
    """A short human reason for a transport error (httpx's text is long and nested)."""
    text = str(exc) or exc.__class__.__name__
    lowered = text.lower()
    if "certificate" in lowered or "ssl" in lowered:
        return "TLS error: " + text.splitlines()[0] + " (use --cacert or --insecure)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host"
    return text.splitlines()[0]


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and body.get("error"):
        message = str(body["error"])
    else:
        first_line = response.text.strip().splitlines()[0] if response.text.strip() else ""
        message = first_line[:200] or response.reason_phrase or "request failed"
    hints = []
    if response.status_code == 401:
        hints.append("set --token or DAEMON_TOKEN")
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        hints.append(f"retry after {retry_after}s")
    suffix = f"; {'; '.join(hints)}" if hints else ""
    return f"{message} (HTTP {response.status_code} from {response.request.url}{suffix})"


@dataclass
class Reply:
    status: int
    data: Any
    url: str


class Client:
    """Sends one request to the first node that answers.

    Fail-over only happens when the request provably never reached a node
    (connect errors), or for reads: re-sending a POST whose answer was lost
    (read timeout) could run an execution twice.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        verify: bool | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.urls = list(urls)
        headers = {"Accept": "application/json", "User-Agent": PROG}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            headers=headers, timeout=timeout, verify=verify, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        urls: Sequence[str] | None = None,
    ) -> Reply:
        failures: list[str] = []
        for base in urls or self.urls:
            try:
                response = self._http.request(method, base + path, json=body, params=params or None)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failures.append(f"{base} ({_reason(exc)})")
                continue
            except httpx.HTTPError as exc:
                if method == "GET":
                    failures.append(f"{base} ({_reason(exc)})")
                    continue
                raise CliError(
                    f"{method} {base}{path}: {_reason(exc)}; the request may still have "
                    "taken effect: check before retrying"
                ) from None
            return self._reply(response, base)
        raise CliError("no node answered at " + ", ".join(failures))

    @staticmethod
    def _reply(response: httpx.Response, base: str) -> Reply:
        if response.status_code >= 400:
            raise CliError(_error_message(response))
        if not response.content:
            return Reply(response.status_code, None, base)
        try:
            data = response.json()
        except ValueError:
            raise CliError(f"unexpected non-JSON answer from {response.request.url}") from None
        return Reply(response.status_code, data, base)

    def stream(self, method: str, url: str, timeout: float) -> Any:
        """A streamed request to one node (a binary answer: a backup)."""
        return self._http.stream(method, url, timeout=timeout)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).data


def split_urls(values: Sequence[str] | None) -> list[str]:
    """Flatten repeated and comma-separated --url values; drop duplicates, keep order."""
    raw = values if values else [os.environ.get("DAEMON_URL") or DEFAULT_URL]
    urls: list[str] = []
    for value in raw:
        for part in value.split(","):
            url = part.strip().rstrip("/")
            if not url:
                continue
            if "://" not in url:
                url = "http://" + url
            if url not in urls:
                urls.append(url)
    if not urls:
        raise UsageError("--url is empty")
    return urls
