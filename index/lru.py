"""One bounded, thread-safe least-recently-used map, for every cache of the service."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LRU(Generic[V]):
    """Entries within a budget: the sum of `size(value)` (1 per entry by default). The least
    recently used go first; one entry larger than the budget is kept alone until the next."""

    def __init__(self, budget: float, size: Callable[[V], float] = lambda _: 1):
        self.budget = budget
        self.held = 0.0
        self._size = size
        self._items: OrderedDict[Hashable, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: Hashable, value: V) -> V:
        if self.budget <= 0:
            return value
        size = self._size(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.held -= old[1]
            self._items[key] = (value, size)
            self.held += size
            while self.held > self.budget and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self.held -= dropped
        return value
