"""Search the index in service: open CURRENT once, reopen when a new generation is switched in.

The service talks to the index only through this module: `IndexReader.generation()` gives the
generation in service (index/generation.py), and `Generation.search(SearchQuery)` returns typed
hits and a total (index/model.py), found by index/retrieval.py.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .build import current_generation, current_pointer
from .generation import Generation
from .model import Hit, SearchQuery, SearchResult
from .query import split_query

__all__ = ["Generation", "Hit", "IndexReader", "SearchQuery", "SearchResult", "split_query"]


class IndexReader:
    """Per-process handle on an index directory; cheap to ask for the current generation.

    Each call reads the CURRENT symlink (one readlink) and opens a fresh Generation only when
    the pointer has moved. The previous generation stays open until the next switch, so a
    request that started on it can finish.
    """

    def __init__(self, index_dir: Path | str):
        self.index_dir = Path(index_dir)
        self._index_dir = str(self.index_dir)
        self._current: Generation | None = None
        self._previous: Generation | None = None
        self._lock = threading.Lock()

    def generation(self) -> Generation:
        # Called on every request: string operations, not pathlib.
        name = os.path.basename(current_pointer(self._index_dir))
        current = self._current
        if current is not None and current.name == name:
            return current
        with self._lock:
            path = current_generation(self.index_dir)
            if self._current is not None and self._current.name == path.name:
                return self._current
            opened = Generation(path)
            if self._previous is not None:
                self._previous.close()
            self._previous, self._current = self._current, opened
            return opened

    def close(self) -> None:
        for generation in (self._current, self._previous):
            if generation is not None:
                generation.close()
        self._current = self._previous = None
