"""LRU cache of operation results, for operations that declare ``cacheTtlMs``.

Bounded by ``CACHE_MAX_SIZE`` (the runbook's OOM scenario shrinks it at run time). The
caller passes the clock in (``now_ms``, monotonic milliseconds) so tests need no sleeps.
A plain ``OrderedDict`` is enough here: cachetools' TTLCache reads its own timer and
ties one TTL to the whole cache, while each operation declares its own.
"""

from __future__ import annotations

from collections import OrderedDict


class ResultCache:
    """Used on the event loop only (not thread-safe)."""

    def __init__(self, max_size: int) -> None:
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self.max_size = max(0, int(max_size))
        self.hits = 0
        self.misses = 0

    @property
    def size(self) -> int:
        return len(self._entries)

    @property
    def hit_rate(self) -> float:
        """Percentage of lookups that hit, 0..100; 0.0 before any lookup."""
        lookups = self.hits + self.misses
        return 100.0 * self.hits / lookups if lookups else 0.0

    def get(self, key: str, now_ms: float) -> tuple[bool, object]:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now_ms:
            self._entries.move_to_end(key)
            self.hits += 1
            return True, entry[1]
        if entry is not None:
            del self._entries[key]
        self.misses += 1
        return False, None

    def put(self, key: str, value: object, ttl_ms: float, now_ms: float) -> None:
        if self.max_size <= 0 or ttl_ms <= 0:
            return
        self._entries[key] = (now_ms + ttl_ms, value)
        self._entries.move_to_end(key)
        self._evict_to(self.max_size)

    def discard(self, key: str) -> bool:
        return self._entries.pop(key, None) is not None

    def invalidate(self, prefix: str) -> int:
        doomed = [key for key in self._entries if key.startswith(prefix)]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def purge_expired(self, now_ms: float) -> int:
        """Drop expired entries; ``get`` drops them lazily, this keeps ``size`` honest."""
        doomed = [key for key, (expires, _) in self._entries.items() if expires <= now_ms]
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()

    def resize(self, max_size: int) -> None:
        self.max_size = max(0, int(max_size))
        self._evict_to(self.max_size)

    def stats(self) -> dict:
        return {
            "size": self.size,
            "maxSize": self.max_size,
            "hits": self.hits,
            "misses": self.misses,
            "hitRate": round(self.hit_rate, 2),
        }

    def _evict_to(self, limit: int) -> None:
        while len(self._entries) > limit:
            self._entries.popitem(last=False)
