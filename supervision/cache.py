"""An optional response cache: TTL on an injected clock, LRU-bounded, keyed by request hash.

:func:`request_key` turns a normalised request into a stable key (sha256 of
canonical JSON). :class:`TTLCache` holds values until ``ttl_s`` after they were put
and at most ``max_entries`` of them, evicting the least recently used first.

Failure semantics: a miss or an expired entry reads as ``None`` (never an error),
so values must not be ``None`` themselves. :func:`request_key` raises ``TypeError``
for a payload JSON cannot encode (sets, bytes, objects); :class:`TTLCache` raises
:class:`~supervision.errors.PolicyConfigError` for bad settings and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from supervision.clock import Clock
from supervision.errors import PolicyConfigError

__all__ = ["TTLCache", "request_key"]

V = TypeVar("V")


def request_key(payload: Mapping[str, Any]) -> str:
    """The hex sha256 of ``payload`` as canonical JSON: sorted keys, no whitespace, ASCII."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class TTLCache(Generic[V]):
    """Values expire ``ttl_s`` after their last ``put``; beyond ``max_entries``, LRU goes first.

    A ``get`` hit refreshes recency, not the TTL: a cached answer must not outlive its
    freshness by being popular. ``hits``/``misses`` count ``get`` outcomes over the
    cache's life (``clear`` keeps them).
    """

    def __init__(self, ttl_s: float, clock: Clock, *, max_entries: int = 1024) -> None:
        if not 0 < ttl_s < math.inf:  # also rejects NaN
            raise PolicyConfigError(f"ttl_s must be a finite number > 0, got {ttl_s}")
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise PolicyConfigError(f"max_entries must be an int >= 1, got {max_entries!r}")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        # key -> (expires_at, value), least recently used first
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._hits = 0
        self._misses = 0

    @property
    def hits(self) -> int:
        return self._hits

    @property
    def misses(self) -> int:
        return self._misses

    def get(self, key: str) -> V | None:
        """The live value for ``key``, or ``None`` (missing, or expired and now evicted)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] <= self._clock.now():
            del self._entries[key]
            entry = None
        if entry is None:
            self._misses += 1
            return None
        self._entries.move_to_end(key)
        self._hits += 1
        return entry[1]

    def put(self, key: str, value: V) -> None:
        """Store ``value`` for ``ttl_s``; evicts the least recently used beyond ``max_entries``."""
        self._entries[key] = (self._clock.now() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry; the hit and miss counters are kept."""
        self._entries.clear()

    def __len__(self) -> int:
        """Live entries; drops the expired ones first (O(n), meant for stats and tests)."""
        now = self._clock.now()
        for key in [k for k, (expires_at, _) in self._entries.items() if expires_at <= now]:
            del self._entries[key]
        return len(self._entries)
