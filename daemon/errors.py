"""The one exception type the HTTP layer turns into a status and a JSON error."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request that cannot be served; becomes ``{"error": message}`` with status."""

    headers: dict[str, str] | None = None  # e.g. Retry-After

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra
