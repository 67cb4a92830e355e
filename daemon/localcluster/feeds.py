"""Read a node's execution feed (`GET /executions?after=`) for the history checker."""

from __future__ import annotations

from typing import Any

import httpx

PAGE = 1000


def feed_records(
    url: str, token: str | None, after: int = 0, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """Every record the node's feed holds after seq `after` (within its bounded window),
    in seq order; duplicates are kept, so the checker can see them."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    records: list[dict[str, Any]] = []
    with httpx.Client(timeout=timeout_s, headers=headers) as http:
        while True:
            answer = http.get(f"{url}/executions", params={"after": after, "limit": PAGE})
            answer.raise_for_status()
            page = answer.json()
            records.extend(page["executions"])
            if not page["executions"]:
                return records
            after = page["nextAfter"]


def latest_seq(url: str, token: str | None, timeout_s: float = 10.0) -> int:
    """The newest seq the node's feed holds (0 when empty)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(
        f"{url}/executions", params={"after": 0, "limit": 1}, headers=headers, timeout=timeout_s
    )
    answer.raise_for_status()
    return int(answer.json().get("latestSeq") or 0)
