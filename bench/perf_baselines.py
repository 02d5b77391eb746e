"""The two baselines over exactly the snippets our build indexed: SQLite FTS5 and tantivy.

Both index the fields our search matches against (text, section heading, article title) with
a Porter/English stemmer, store what a hit returns, and answer a query the same way: every
content word (and every quoted phrase) must match somewhere in the snippet (AND), optional
filters on condition slug and source id, top 10 by BM25 (our field weights,
index.query.FIELD_BOOSTS), the total number of matches, the stored fields of the hits and the
text with the matched words marked. Stop words are dropped from plain words as our analyzer
drops them.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from whoosh.analysis import STOP_WORDS

try:
    from index.query import FIELD_BOOSTS
except ImportError:  # the engine behind index/search.py is being redesigned; if this name goes,
    # these are the weights it had when it went (text, section heading, title)
    FIELD_BOOSTS = {"text": 1.0, "section": 0.8, "title": 1.0}

_PHRASE = re.compile(r'"([^"]*)"')
WEIGHTS = dict(FIELD_BOOSTS)


def parse(text: str) -> tuple[list[str], list[list[str]]]:
    """Content words and quoted phrases (as word lists), the way our service splits a query."""
    phrases = [re.findall(r"\w+", p) for p in _PHRASE.findall(text)]
    rest = _PHRASE.sub(" ", text).replace('"', " ")
    words = [w for w in re.findall(r"\w+", rest) if len(w) > 1 and w.lower() not in STOP_WORDS]
    return list(dict.fromkeys(words)), [p for p in phrases if p]


# -- SQLite FTS5 ------------------------------------------------------------------------------

FTS5_SCHEMA = """
CREATE VIRTUAL TABLE snip USING fts5(
    text, section, title, id UNINDEXED, source_id UNINDEXED,
    tokenize = 'porter unicode61');
CREATE TABLE snippet_condition(slug TEXT NOT NULL, snip_rowid INTEGER NOT NULL,
    PRIMARY KEY (slug, snip_rowid)) WITHOUT ROWID;
CREATE TABLE snippet_source(source_id TEXT NOT NULL, snip_rowid INTEGER NOT NULL,
    PRIMARY KEY (source_id, snip_rowid)) WITHOUT ROWID;
"""


def fts5_build(snippets: list[dict[str, Any]], path: Path) -> None:
    """Create the database, insert every snippet and commit (what the baseline's build time
    covers)."""
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        con.executescript(FTS5_SCHEMA)
        with con:
            con.executemany(
                "INSERT INTO snip(rowid, text, section, title, id, source_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                ((n, s["text"], s.get("section") or "", s.get("title") or "", s["id"],
                  s["source_id"]) for n, s in enumerate(snippets, start=1)))
            con.executemany(
                "INSERT INTO snippet_condition(slug, snip_rowid) VALUES (?, ?)",
                ((slug, n) for n, s in enumerate(snippets, start=1) for slug in s["conditions"]))
            con.executemany(
                "INSERT INTO snippet_source(source_id, snip_rowid) VALUES (?, ?)",
                ((s["source_id"], n) for n, s in enumerate(snippets, start=1)))
    finally:
        con.close()


def fts5_match(text: str) -> str | None:
    """An FTS5 MATCH expression: each word and phrase a quoted string, joined by AND.
    Quoting (with any quote doubled) means no user text is FTS5 syntax."""
    words, phrases = parse(text)
    parts = ['"' + w.replace('"', '""') + '"' for w in words]
    parts += ['"' + " ".join(p).replace('"', '""') + '"' for p in phrases]
    return " AND ".join(parts) if parts else None


class Fts5:
    name = "fts5"

    def __init__(self, path: Path):
        self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.rank = ", ".join(str(w) for w in WEIGHTS.values())

    def search(self, text: str, conditions: list[str], sources: list[str],
               limit: int = 10) -> tuple[int, list[tuple]]:
        match = fts5_match(text)
        if match is None:
            return 0, []
        where = ["snip MATCH ?"]
        params: list[Any] = [match]
        # The faster plan for each filter (measured): a condition covers hundreds of snippets,
        # so the MATCH drives and each row is checked against the list (the unary + keeps
        # SQLite from looking the list's rowids up one by one in FTS5); a source has a handful
        # of snippets, so looking those up is quicker.
        if conditions:
            where.append("+snip.rowid IN (SELECT snip_rowid FROM snippet_condition WHERE slug "
                         f"IN ({', '.join('?' * len(conditions))}))")
            params += conditions
        if sources:
            where.append("snip.rowid IN (SELECT snip_rowid FROM snippet_source WHERE source_id "
                         f"IN ({', '.join('?' * len(sources))}))")
            params += sources
        clause = " AND ".join(where)
        hits = self.con.execute(
            "SELECT id, source_id, title, section, text, "
            "highlight(snip, 0, '<mark>', '</mark>'), bm25(snip, " + self.rank + ") AS score "
            f"FROM snip WHERE {clause} ORDER BY score LIMIT ?", [*params, limit]).fetchall()
        total = self.con.execute(f"SELECT count(*) FROM snip WHERE {clause}",
                                 params).fetchone()[0]
        return total, hits

    def close(self) -> None:
        self.con.close()


# -- tantivy ----------------------------------------------------------------------------------

def _tantivy_schema():
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw")
    builder.add_text_field("source_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("text", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("section", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("title", stored=True, tokenizer_name="en_stem")
    builder.add_text_field("conditions", stored=True, tokenizer_name="raw")
    return builder.build()


def tantivy_build(snippets: list[dict[str, Any]], path: Path) -> None:
    """Create the index, add every snippet, commit and wait for merges (the build time)."""
    import tantivy

    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    index = tantivy.Index(_tantivy_schema(), path=str(path))
    writer = index.writer()
    for s in snippets:
        writer.add_document(tantivy.Document(
            id=s["id"], source_id=s["source_id"], text=s["text"],
            section=s.get("section") or "", title=s.get("title") or "",
            conditions=list(s["conditions"])))
    writer.commit()
    writer.wait_merging_threads()


class Tantivy:
    name = "tantivy"

    def __init__(self, path: Path):
        import tantivy

        self._t = tantivy
        self.index = tantivy.Index.open(str(path))
        self.schema = self.index.schema
        self.searcher = self.index.searcher()

    def search(self, text: str, conditions: list[str], sources: list[str],
               limit: int = 10) -> tuple[int, list[tuple]]:
        t = self._t
        words, phrases = parse(text)
        parts = ['"' + w + '"' for w in words] + ['"' + " ".join(p) + '"' for p in phrases]
        if not parts:
            return 0, []
        query = self.index.parse_query(" ".join(parts), default_field_names=list(WEIGHTS),
                                       field_boosts=WEIGHTS, conjunction_by_default=True)
        filters = []
        if conditions:
            filters.append(t.Query.term_set_query(self.schema, "conditions", list(conditions)))
        if sources:
            filters.append(t.Query.term_set_query(self.schema, "source_id", list(sources)))
        scored = query
        if filters:
            scored = t.Query.boolean_query(
                [(t.Occur.Must, query)]
                + [(t.Occur.Must, t.Query.const_score_query(f, 0.0)) for f in filters])
        result = self.searcher.search(scored, limit=limit, count=True)
        generator = t.SnippetGenerator.create(self.searcher, query, self.schema, "text")
        generator.set_max_num_chars(100_000)
        hits = []
        for score, address in result.hits:
            doc = self.searcher.doc(address)
            hits.append((doc.get_first("id"), doc.get_first("source_id"), doc.get_first("title"),
                         doc.get_first("section"), doc.get_first("text"),
                         generator.snippet_from_doc(doc).to_html(), score))
        return result.count, hits

    def close(self) -> None:
        self.searcher = None
        self.index = None
