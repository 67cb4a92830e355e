"""Checks before a member is added at run time (POST /admin/members).

A member's HTTP URL receives the console's token and the peers' internal token, so a
made-up member would collect them. A new member must therefore be new (no name,
Raft address or URL that another member has) and be there: its Raft port accepts a
connection and its /health/live answers with its own name. The probe sends no token.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx

PROBE_TIMEOUT_S = 3.0
# A node started a moment ago (`kubectl scale`, then POST) may still be binding its ports.
PROBE_WAIT_S = 15.0


def member_conflict(entries: dict[str, dict[str, str]], name: str, address: str, url: str) -> str:
    """A one-line refusal when the new member repeats a known one, else ""."""
    if name in entries:
        return f"a member named {name} already exists; remove it first"
    for other, entry in entries.items():
        if entry.get("raftAddress") == address:
            return f"raftAddress {address} already belongs to {other}"
        if entry.get("httpUrl", "").rstrip("/") == url.rstrip("/"):
            return f"httpUrl {url} already belongs to {other}"
    return ""


async def probe_new_member(name: str, address: str, url: str) -> str:
    """Empty when the node answers on both ports as `name` within PROBE_WAIT_S, else why not."""
    deadline = asyncio.get_running_loop().time() + PROBE_WAIT_S
    while True:
        why = await _probe_once(name, address, url)
        if not why or asyncio.get_running_loop().time() > deadline:
            return why
        await asyncio.sleep(0.2)  # polling the new node until it is up, with a deadline


async def _probe_once(name: str, address: str, url: str) -> str:
    host, port = address.rsplit(":", 1)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port)), PROBE_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        return f"nothing accepts connections on raftAddress {address}; start the node first"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, verify=False) as client:
            # No token is sent: /health/live is open, and the URL is not trusted yet.
            answer = (await client.get(url.rstrip("/") + "/health/live")).json()
    except (httpx.HTTPError, ValueError):
        return f"{url}/health/live does not answer; start the node first"
    if not isinstance(answer, dict) or answer.get("node") != name:
        return f"{url} answers as {str(answer.get('node') if isinstance(answer, dict) else None)!r}, not {name}"
    return ""
