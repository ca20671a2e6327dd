"""TTL + LRU response cache on a FakeClock, and stable request keys."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from supervision.cache import TTLCache, request_key
from supervision.errors import PolicyConfigError
from supervision.testing import FakeClock


def make(ttl_s: float = 10.0, max_entries: int = 3) -> tuple[TTLCache[str], FakeClock]:
    clock = FakeClock()
    return TTLCache[str](ttl_s, clock, max_entries=max_entries), clock


@pytest.mark.parametrize(
    ("ttl_s", "max_entries"),
    [(0.0, 1), (-1.0, 1), (float("nan"), 1), (float("inf"), 1), (1.0, 0), (1.0, True)],
    ids=repr,
)
def test_bad_settings_raise_config_error(ttl_s: float, max_entries: Any) -> None:
    """ttl_s must be finite and > 0, max_entries an int >= 1."""
    with pytest.raises(PolicyConfigError):
        TTLCache[str](ttl_s, FakeClock(), max_entries=max_entries)


@pytest.mark.parametrize(("age", "hit"), [(0.0, True), (9.999, True), (10.0, False), (50.0, False)])
def test_entries_expire_after_ttl(age: float, hit: bool) -> None:
    """A value is served until ttl_s has passed on the clock, then reads as a miss and is evicted."""
    cache, clock = make()
    cache.put("k", "v")
    clock.advance(age)
    assert cache.get("k") == ("v" if hit else None)
    assert len(cache) == (1 if hit else 0)


def test_get_does_not_extend_the_ttl_but_put_does() -> None:
    """Reading keeps the original expiry; putting again restarts it."""
    cache, clock = make()
    cache.put("a", "1")
    cache.put("b", "1")
    clock.advance(6.0)
    assert cache.get("a") == "1"
    cache.put("b", "2")
    clock.advance(6.0)
    assert cache.get("a") is None and cache.get("b") == "2"


def test_lru_eviction_beyond_max_entries() -> None:
    """Beyond max_entries the least recently used entry goes first; a get counts as use."""
    cache, _ = make(max_entries=3)
    for key in "abc":
        cache.put(key, key.upper())
    assert cache.get("a") == "A"  # b is now the least recently used
    cache.put("d", "D")
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == ["A", "C", "D"]
    assert len(cache) == 3


def test_hit_and_miss_counters_survive_clear() -> None:
    """hits/misses count get() outcomes; clear() drops entries but keeps the counts."""
    cache, clock = make()
    cache.put("k", "v")
    cache.get("k")
    cache.get("nope")
    clock.advance(10.0)
    cache.get("k")  # expired: a miss
    assert (cache.hits, cache.misses) == (1, 2)
    cache.put("x", "y")
    cache.clear()
    assert len(cache) == 0 and cache.get("x") is None and cache.misses == 3


def test_len_counts_only_live_entries() -> None:
    """len() drops expired entries before counting."""
    cache, clock = make()
    cache.put("old", "1")
    clock.advance(5.0)
    cache.put("new", "2")
    clock.advance(5.0)
    assert len(cache) == 1 and cache.get("new") == "2"


def test_request_key_is_stable_under_key_order() -> None:
    """The same request with keys in any order (nested too) gives the same key."""
    a = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0}
    b = {"temperature": 0.0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert request_key(a) == request_key(b)
    assert len(request_key(a)) == 64 and int(request_key(a), 16) >= 0


@pytest.mark.parametrize(
    "other",
    [
        {"model": "m", "messages": [{"role": "user", "content": "hi!"}], "temperature": 0.0},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    ],
)
def test_request_key_differs_for_different_requests(other: dict[str, Any]) -> None:
    """Any change in the request changes the key."""
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0}
    assert request_key(base) != request_key(other)


def test_request_key_is_canonical_json_sha256() -> None:
    """The key is the sha256 of sorted, whitespace-free, ASCII JSON (pinned value)."""
    assert request_key({"b": 1, "a": "é"}) == hashlib.sha256(b'{"a":"\\u00e9","b":1}').hexdigest()


def test_request_key_rejects_what_json_cannot_encode() -> None:
    """A payload holding a set raises TypeError rather than hashing something unstable."""
    with pytest.raises(TypeError):
        request_key({"tools": {"a", "b"}})
