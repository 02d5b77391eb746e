"""The values the engine takes and gives: a query (its own cache key), hits and a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SearchQuery:
    """What is asked. Frozen and hashable: it is the result cache's key. Whitespace in `text`
    is normalised and the filters become tuples, so equal questions are equal keys."""

    text: str = ""
    conditions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    max_grade: float | None = None
    limit: int = 10
    offset: int = 0

    def __post_init__(self):
        object.__setattr__(self, "text", " ".join(self.text.split()))
        object.__setattr__(self, "conditions", tuple(self.conditions))
        object.__setattr__(self, "sources", tuple(self.sources))


@dataclass(frozen=True)
class Hit:
    """One snippet found: its stored record (with `also_in`), its score (None when browsing)
    and the character spans of the text to mark as matches."""

    doc: int
    record: dict[str, Any]
    score: float | None
    spans: tuple[tuple[int, int], ...] = ()
    matched: tuple[str, ...] = ()  # the query's concepts it matches, as typed

    @property
    def id(self) -> str:
        return self.record["id"]


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int
    words: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    match: str = "all"  # "all" words matched, or "any" after relaxing a query that found few
    suggestion: str | None = None
    # The query's words (concepts, as typed) that no snippet matches: the index has nothing
    # on them. A subject among them empties the answer rather than fill it with the rest.
    not_found: list[str] = field(default_factory=list)
