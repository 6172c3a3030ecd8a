"""One cache policy for every per-statement cache: bounded LRU, sized in one place.

Statement analysis, literal shapes, policy decisions, masking lineage and
plans, and placeholder verdicts are all keyed by statement text (or shape).
They used to have their own sizes (512, 2,048, 4,096) and eviction rules
(clear-all, FIFO, LRU), so past ~2,048 distinct texts one of them fell off
a cliff and dragged the others with it. Here they share one policy:

* least recently used is evicted first;
* every cache holds at most :data:`STATEMENTS` entries (a working set of a few
  thousand distinct texts stays warm) and, where entries grow with the text,
  at most :data:`STATEMENT_CHARS` characters of text (memory stays bounded
  under any number of unique statements, however long they are).

Reads take no lock (``OrderedDict`` operations are atomic under the GIL; an
entry evicted by another thread between ``get`` and ``move_to_end`` is still a
valid answer); writes and evictions take the cache's lock.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from functools import wraps
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])

#: entries per statement-keyed cache: above the 4,000-text working set issue 14 asks to stay warm
STATEMENTS = 8192
#: characters of statement text per cache whose entries grow with the text (parsed trees: ~150 bytes/char)
STATEMENT_CHARS = 1_000_000

_MISSING: Any = object()

#: the generation every per-statement verdict is stamped with (decision 0423, ``pipeline.Known.verdict``): anything
#: that can change an answer a verdict holds (the rules catalog, a policy's rules, masking's labels or schema)
#: moves it on, and every verdict of every connection is then derived again on its next use
GENERATION: list[int] = [0]
_generations = itertools.count(1)


def new_generation() -> None:
    """Invalidate every statement verdict (``next()`` on a count is atomic under the GIL: two bumps never meet)."""
    GENERATION[0] = next(_generations)


class LRU(Generic[K, V]):
    """A bounded least-recently-used map (entries, and optionally total weight)."""

    __slots__ = ("_data", "_lock", "_weight", "_weights", "maxsize", "maxweight", "name")

    def __init__(self, name: str, maxsize: int = STATEMENTS, maxweight: int | None = None) -> None:
        if maxsize < 0 or (maxweight is not None and maxweight < 0):
            raise ValueError(f"cache {name!r}: sizes must be >= 0")
        self.name = name
        self.maxsize = maxsize
        self.maxweight = maxweight
        self._data: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: K, default: Any = None) -> Any:
        """The value for ``key`` (now the most recently used), or ``default``."""
        data = self._data
        try:
            value = data[key]
        except KeyError:
            return default
        try:  # noqa: SIM105 - a try block is cheaper than contextlib.suppress on this path
            data.move_to_end(key)
        except KeyError:  # evicted by another thread meanwhile: the value is still a valid answer
            pass
        return value

    def peek(self, key: K, default: Any = None) -> Any:
        """The value for ``key`` without touching its recency."""
        return self._data.get(key, default)

    def put(self, key: K, value: V, weight: int = 1) -> None:
        """Store ``value``; the least recently used entries leave while the cache is over its bounds."""
        if self.maxsize == 0:
            return
        with self._lock:
            data = self._data
            if self.maxweight is not None:
                self._weight += weight - self._weights.get(key, 0)
                self._weights[key] = weight
            data[key] = value
            data.move_to_end(key)
            while len(data) > self.maxsize or (self.maxweight is not None and self._weight > self.maxweight):
                old, _ = data.popitem(last=False)
                if self.maxweight is not None:
                    self._weight -= self._weights.pop(old, 0)

    def __setitem__(self, key: K, value: V) -> None:
        self.put(key, value)

    def __getitem__(self, key: K) -> V:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._data))

    def values(self) -> list[V]:
        return list(self._data.values())

    def pop(self, key: K, default: Any = None) -> Any:
        with self._lock:
            if self.maxweight is not None:
                self._weight -= self._weights.pop(key, 0)
            return self._data.pop(key, default)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weights.clear()
            self._weight = 0

    @property
    def weight(self) -> int:
        return self._weight

    def __repr__(self) -> str:
        return f"<LRU {self.name} {len(self._data)}/{self.maxsize}>"


def memoize(
    name: str, maxsize: int = STATEMENTS, maxweight: int | None = None, weigh: Callable[..., int] | None = None
) -> Callable[[F], F]:
    """``functools.lru_cache`` for pure functions of hashable positional arguments, on :class:`LRU`.

    The wrapper keeps ``cache_clear()`` and adds ``cache`` (the :class:`LRU`,
    keyed by the argument tuple) and ``cached(*args)`` (a lookup that never
    computes).
    """

    def deco(fn: F) -> F:
        cache: LRU[tuple[Any, ...], Any] = LRU(name, maxsize, maxweight)

        @wraps(fn)
        def wrapper(*args: Any) -> Any:
            found = cache.get(args, _MISSING)
            if found is _MISSING:
                found = fn(*args)
                cache.put(args, found, weigh(*args) if weigh is not None else 1)
            return found

        def cached(*args: Any) -> Any:
            return cache.get(args)

        wrapper.cache = cache  # type: ignore[attr-defined]
        wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
        wrapper.cached = cached  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco


__all__ = ["LRU", "STATEMENTS", "STATEMENT_CHARS", "memoize"]
