"""A warning that can recur fast (anyone who reaches a port can trigger it), written at
most once per interval; the next line it writes says how many it left out."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        every_s: float,
        left_out: str = "{} more since the last such line",
    ) -> None:
        self.logger = logger
        self.every_s = every_s
        self.left_out = left_out
        self.last_at = -every_s
        self.unlogged = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self.last_at < self.every_s:
                self.unlogged += 1
                return
            self.last_at, unlogged, self.unlogged = now, self.unlogged, 0
        if unlogged:
            message = f"{message} ({self.left_out.format(unlogged)})"
        self.logger.warning(message, *args)
