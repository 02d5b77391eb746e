"""The query mix: reproducible (fixed seed), drawn from the corpus pages and built snippets.

Kinds (shares of the mix):
  title      1-4 words from a page title
  text       1-4 words from one paragraph, in the order they appear there
  phrase     a quoted 2-3 word run from a paragraph, half of them with one more word
  condition  1-2 words from a snippet tagged with a condition, filtered by that condition
  source     1-2 words from a page, filtered by that page's id
Text queries come from pages across every size measured; filters use conditions that have
snippets and pages that exist at the smallest size, so each filter is valid at every size.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from whoosh.analysis import STOP_WORDS

KINDS = (("title", 0.20), ("text", 0.30), ("phrase", 0.15), ("condition", 0.175),
         ("source", 0.175))
WORD_COUNTS = ((1, 0.30), (2, 0.35), (3, 0.20), (4, 0.15))
# Words a person would not type as a topic (besides the analyzer's stop words).
_DULL = STOP_WORDS | frozenset("""
also been but could did does each had has how into its more most much must often only other
our over same should some such than their them then there these they those through very was
were what which while who whom why would about after all any before being both called during
few here just like many means might nor off once out own since so under until upon used using
usually well where within without
""".split())
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*[A-Za-z0-9]|[A-Za-z]")


def _content(words: list[str]) -> list[str]:
    return [w for w in words if len(w) > 2 and w.lower() not in _DULL]


def _pick(rng: random.Random, table: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def read_pages(path: Path, limit: int) -> list[dict[str, Any]]:
    """Pages with their title and paragraphs (blocks of 8 or more words)."""
    pages = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if len(pages) >= limit:
                break
            record = json.loads(line)
            paragraphs = [b for b in record["text"].split("\n\n") if len(b.split()) >= 8]
            pages.append({"id": record["id"], "title": record["title"],
                          "paragraphs": paragraphs})
    return pages


class MixMaker:
    def __init__(self, pages: list[dict[str, Any]], small_pages: int,
                 snippets_small: list[dict[str, Any]], slugs: list[str]):
        self.pages = [p for p in pages if p["paragraphs"]]
        self.small = [p for p in pages[:small_pages] if p["paragraphs"]]
        self.slugs = sorted(slugs)
        self.by_slug: dict[str, list[str]] = {s: [] for s in self.slugs}
        for snippet in snippets_small:
            for slug in snippet["conditions"]:
                if slug in self.by_slug:
                    self.by_slug[slug].append(snippet["text"])
        self.slugs = [s for s in self.slugs if self.by_slug[s]]

    def _words_from(self, rng: random.Random, text: str, count: int) -> list[str]:
        words = _content(_WORD.findall(text))
        if not words:
            return []
        start = rng.randrange(len(words))
        window = words[start:start + max(count * 3, 6)]
        chosen = sorted(rng.sample(range(len(window)), min(count, len(window))))
        return [window[i].lower() for i in chosen]

    def _phrase(self, rng: random.Random, text: str) -> str | None:
        tokens = _WORD.findall(text)
        length = rng.choice((2, 2, 3))
        starts = [i for i in range(len(tokens) - length + 1)
                  if tokens[i].lower() not in _DULL and len(tokens[i]) > 2
                  and tokens[i + length - 1].lower() not in _DULL
                  and len(tokens[i + length - 1]) > 2]
        if not starts:
            return None
        i = rng.choice(starts)
        return " ".join(tokens[i:i + length]).lower()

    def one(self, rng: random.Random) -> dict[str, Any] | None:
        kind = _pick(rng, KINDS)
        query: dict[str, Any] = {"kind": kind, "text": "", "conditions": [], "sources": []}
        if kind == "title":
            page = rng.choice(self.pages)
            words = _content(_WORD.findall(page["title"])) or _WORD.findall(page["title"])
            count = min(_pick(rng, WORD_COUNTS), len(words))
            start = rng.randrange(len(words) - count + 1) if words else 0
            query["text"] = " ".join(words[start:start + count]).lower()
        elif kind == "text":
            page = rng.choice(self.pages)
            query["text"] = " ".join(self._words_from(rng, rng.choice(page["paragraphs"]),
                                                      _pick(rng, WORD_COUNTS)))
        elif kind == "phrase":
            page = rng.choice(self.pages)
            paragraph = rng.choice(page["paragraphs"])
            phrase = self._phrase(rng, paragraph)
            if phrase is None:
                return None
            query["text"] = f'"{phrase}"'
            if rng.random() < 0.5:
                extra = self._words_from(rng, paragraph, 1)
                if extra and extra[0] not in phrase.split():
                    query["text"] += f" {extra[0]}"
        elif kind == "condition":
            if not self.slugs:
                return None
            slug = rng.choice(self.slugs)
            query["conditions"] = [slug]
            query["text"] = " ".join(self._words_from(rng, rng.choice(self.by_slug[slug]),
                                                      rng.choice((1, 1, 2))))
        else:
            page = rng.choice(self.small)
            query["sources"] = [page["id"]]
            query["text"] = " ".join(self._words_from(rng, rng.choice(page["paragraphs"]),
                                                      rng.choice((1, 1, 2))))
        return query if query["text"].strip() else None

    def make(self, seed: int, count: int, exclude: set[tuple] | None = None
             ) -> list[dict[str, Any]]:
        """`count` distinct queries (text and filters), none of them in `exclude`."""
        rng = random.Random(seed)
        seen = set(exclude or ())
        out: list[dict[str, Any]] = []
        attempts = 0
        while len(out) < count and attempts < count * 50:
            attempts += 1
            query = self.one(rng)
            if query is None:
                continue
            key = key_of(query)
            if key in seen:
                continue
            seen.add(key)
            out.append(query)
        return out


def key_of(query: dict[str, Any]) -> tuple:
    return (query["text"], tuple(query["conditions"]), tuple(query["sources"]))


def repeated_set(mix: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A handful of queries for the repeated (warm) measurements: one of each kind, and a
    second plain-text one."""
    chosen: list[dict[str, Any]] = []
    for kind, _ in KINDS:
        chosen += [q for q in mix if q["kind"] == kind][:1]
    extra = [q for q in mix if q["kind"] == "text" and q not in chosen][:1]
    return chosen + extra
