"""The baseline for `make eval`: plain SQLite FTS5 (porter stemmer) bm25 over the snippet texts.

Only each snippet's text is indexed (no title or section), one row per snippet, no expansion,
no collapsing. A query is the user's words, each a quoted FTS5 string (so no input is FTS5
syntax), all required; when that finds nothing, any of them. Ranked by bm25(). A condition
filter goes through a side table holding each snippet's condition slugs (the same ones the
Whoosh index filters on).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any


def fts_terms(text: str) -> list[str]:
    """The user's words as quoted FTS5 strings."""
    return ['"' + word.replace('"', '""') + '"' for word in re.findall(r"\w+", text)]


class Fts5Baseline:
    def __init__(self, snippets: Iterable[Mapping[str, Any]]):
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE VIRTUAL TABLE fts USING fts5(text, tokenize='porter unicode61')")
        self.db.execute("CREATE TABLE cond (docid INTEGER NOT NULL, slug TEXT NOT NULL)")
        self.ids: list[str] = []
        rows, conditions = [], []
        for docid, snippet in enumerate(snippets):
            self.ids.append(snippet["id"])
            rows.append((docid, snippet["text"]))
            conditions.extend((docid, slug) for slug in snippet["conditions"])
        with self.db:
            self.db.executemany("INSERT INTO fts(rowid, text) VALUES (?, ?)", rows)
            self.db.executemany("INSERT INTO cond(docid, slug) VALUES (?, ?)", conditions)
            self.db.execute("CREATE INDEX cond_slug ON cond(slug, docid)")

    def _run(self, match: str, conditions: tuple[str, ...], limit: int) -> list[str]:
        sql = "SELECT rowid FROM fts WHERE fts MATCH ?"
        params: list[Any] = [match]
        if conditions:
            marks = ", ".join("?" * len(conditions))
            sql += f" AND rowid IN (SELECT docid FROM cond WHERE slug IN ({marks}))"
            params.extend(conditions)
        sql += " ORDER BY bm25(fts) LIMIT ?"
        params.append(limit)
        return [self.ids[row[0]] for row in self.db.execute(sql, params)]

    def search(self, text: str, conditions: tuple[str, ...] = (), limit: int = 10) -> list[str]:
        """Snippet ids, best first."""
        terms = list(dict.fromkeys(fts_terms(text)))
        if not terms:
            return []
        found = self._run(" AND ".join(terms), conditions, limit)
        if not found and len(terms) > 1:
            found = self._run(" OR ".join(terms), conditions, limit)
        return found

    def close(self) -> None:
        self.db.close()
