"""The result cache: LRU order, per-entry TTL, hit/miss accounting and a size bound."""

from __future__ import annotations

from daemon.cache import ResultCache

TTL = 1_000.0


def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = ResultCache(max_size=2)
    cache.put("a", 1, TTL, now_ms=0)
    cache.put("b", 2, TTL, now_ms=0)
    assert cache.get("a", now_ms=1) == (True, 1)  # "a" is now the most recent

    cache.put("c", 3, TTL, now_ms=2)

    assert cache.get("b", now_ms=3) == (False, None)
    assert cache.get("a", now_ms=3) == (True, 1)
    assert cache.get("c", now_ms=3) == (True, 3)
    assert cache.size == 2


def test_putting_an_existing_key_refreshes_value_and_recency() -> None:
    cache = ResultCache(max_size=2)
    cache.put("a", 1, TTL, now_ms=0)
    cache.put("b", 2, TTL, now_ms=0)
    cache.put("a", 10, TTL, now_ms=1)
    cache.put("c", 3, TTL, now_ms=2)
    assert cache.get("a", now_ms=3) == (True, 10)
    assert cache.get("b", now_ms=3) == (False, None)


def test_entry_expires_after_its_own_ttl_and_is_dropped() -> None:
    cache = ResultCache(max_size=10)
    cache.put("short", "s", ttl_ms=100, now_ms=0)
    cache.put("long", "l", ttl_ms=10_000, now_ms=0)

    assert cache.get("short", now_ms=99) == (True, "s")
    assert cache.get("short", now_ms=100) == (False, None)
    assert cache.size == 1
    assert cache.get("long", now_ms=100) == (True, "l")


def test_hits_and_misses_are_counted_and_hit_rate_is_a_percentage() -> None:
    cache = ResultCache(max_size=10)
    assert cache.hit_rate == 0.0
    cache.put("k", None, TTL, now_ms=0)
    cache.get("k", now_ms=1)
    cache.get("k", now_ms=1)
    cache.get("k", now_ms=1)
    cache.get("other", now_ms=1)
    assert (cache.hits, cache.misses, cache.hit_rate) == (3, 1, 75.0)
    assert cache.stats() == {"size": 1, "maxSize": 10, "hits": 3, "misses": 1, "hitRate": 75.0}


def test_a_cached_none_result_is_a_hit() -> None:
    cache = ResultCache(max_size=1)
    cache.put("k", None, TTL, now_ms=0)
    assert cache.get("k", now_ms=1) == (True, None)


def test_max_size_zero_disables_caching() -> None:
    cache = ResultCache(max_size=0)
    cache.put("k", 1, TTL, now_ms=0)
    assert cache.size == 0
    assert cache.get("k", now_ms=1) == (False, None)
    assert cache.misses == 1


def test_zero_ttl_is_not_stored() -> None:
    cache = ResultCache(max_size=5)
    cache.put("k", 1, ttl_ms=0, now_ms=0)
    assert cache.size == 0


def test_invalidate_drops_entries_by_key_prefix() -> None:
    cache = ResultCache(max_size=10)
    for key in ("op-1?a", "op-1?b", "op-2?a"):
        cache.put(key, key, TTL, now_ms=0)
    assert cache.invalidate("op-1?") == 2
    assert cache.size == 1
    assert cache.discard("op-2?a") is True
    assert cache.discard("op-2?a") is False


def test_shrinking_evicts_least_recently_used_and_zero_empties_it() -> None:
    cache = ResultCache(max_size=3)
    for key in "abc":
        cache.put(key, key, TTL, now_ms=0)
    cache.resize(1)
    assert (cache.size, cache.max_size) == (1, 1)
    assert cache.get("c", now_ms=1) == (True, "c")
    cache.resize(0)
    assert cache.size == 0


def test_purge_expired_keeps_size_honest_without_lookups() -> None:
    cache = ResultCache(max_size=10)
    cache.put("old", 1, ttl_ms=10, now_ms=0)
    cache.put("new", 2, ttl_ms=1_000, now_ms=0)
    assert cache.purge_expired(now_ms=50) == 1
    assert cache.size == 1
    assert (cache.hits, cache.misses) == (0, 0)
