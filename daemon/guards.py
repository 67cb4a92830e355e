"""Request checks that run before authorisation: Host names and body media types.

With `auth.disabled`, or for the anonymous health reads, any web page a browser
visits could otherwise talk to a node: a `text/plain` POST needs no CORS preflight,
and DNS rebinding points an attacker's name at 127.0.0.1 so the browser reads the
answers. So writes must say `application/json` (which forces a preflight the node
never grants), and the Host header must be a name the node was configured with.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from daemon.config import Config

# Names inside a Kubernetes cluster (the runbook's http://unrdf-daemon-0:8080) never
# come from an attacker's DNS zone: single labels and the cluster's own suffix.
CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


def _host_of(header: str) -> str:
    host = header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostCheck:
    """Which Host headers a node answers: IP literals (rebinding needs a name),
    localhost, single-label and cluster-local names, the node's own advertised
    names, its peers' names, and `http.allowedHosts` (a leading dot admits a suffix)."""

    def __init__(self, config: Config) -> None:
        names = {"localhost", config.node_name}
        for url in (config.advertise_http_url, *(p.http_url for p in config.peers)):
            names.add((urlsplit(url).hostname or "").lower())
        for address in (config.raft_advertise, *(p.raft_address for p in config.peers)):
            names.add(_host_of(address))
        self.exact = {n for n in names if n} | {
            h.lower() for h in config.allowed_hosts if not h.startswith(".")
        }
        self.suffixes = CLUSTER_SUFFIXES + tuple(
            h.lower() for h in config.allowed_hosts if h.startswith(".")
        )
        self.any_host = "*" in config.allowed_hosts

    def allows(self, header: str | None) -> bool:
        if self.any_host:
            return True
        if not header:
            return False
        host = _host_of(header).rstrip(".")
        if _is_ip(host) or host in self.exact or "." not in host:
            return True
        return host.endswith(self.suffixes)

    def remember(self, url: str) -> None:
        """A member added at run time is reachable under its own name too."""
        host = (urlsplit(url).hostname or "").lower()
        if host:
            self.exact.add(host)


def json_body_refusal(method: str, content_type: str | None, content_length: str | None) -> str:
    """An error line when a write carries a body that is not declared as JSON, else ""."""
    if method not in ("POST", "PUT", "PATCH", "DELETE"):
        return ""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return ""
    if not media and content_length in (None, "", "0"):
        return ""  # `curl -X POST .../execute/op` sends no body and no type
    return f"Content-Type must be application/json, got {media or 'none'!r}"
