"""Scoring arrays: each generation's postings laid out flat at build time, memory-mapped at open.

Whoosh stays the index of record (schema, stored fields, lookups by id, spelling); these arrays
are what a search scores with, so no query walks Whoosh's matchers or decodes its blocks. Two
files, covered by the manifest's checksums like every other:

  scoring.json  format, document count, the first and last snippet id (checked against Whoosh
                at open), the terms of each field in term-number order, and where each array
                lies in scoring.bin (dtype, byte offset, count)
  scoring.bin   the arrays, each 8-byte aligned, little-endian

Per scored field (text, title, section), postings in compressed-row form: `offsets[t]` ..
`offsets[t + 1]` index `docs` (ascending document numbers) and `scores` (each posting's BM25F
score without query boosts: Whoosh's formula, its idf, its average field length and its lossy
one-byte field lengths, obtained from Whoosh itself, so scores are Whoosh's BM25F). The text
field also has `keys`: per term, sorted document << 32 | token position, for phrases; each
term's collection frequency; and the token stream of every document (term numbers and
character spans) for highlighting. "word" holds every stem's one-word concept. Keyword
fields (conditions, mentions, focus, source_id) have postings without scores; per document
there is its duplicate group, its position in source order and its reading grade in tenths.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import Analyzed
from .query import DISMAX_TIEBREAK, FIELD_BOOSTS

FORMAT = 3
HEADER = "scoring.json"
DATA = "scoring.bin"
SCORED_FIELDS = ("text", "title", "section")
KEYWORD_FIELDS = ("conditions", "mentions", "focus", "source_id")
# Whoosh's BM25F defaults (scoring.BM25F), which its own searcher uses in the oracle test.
B, K1 = 0.75, 1.2
_ALIGN = 8


class ArraysDamaged(Exception):
    """The arrays do not match their header or the Whoosh segment beside them."""


class _Postings:
    """Postings of one field while building: term numbers by first appearance."""

    def __init__(self):
        self.terms: dict[str, int] = {}
        self.term_numbers: list[int] = []
        self.docs: list[int] = []
        self.weights: list[int] = []

    def add(self, doc: int, values) -> None:
        for value, count in Counter(values).items():
            self.term_numbers.append(self.terms.setdefault(value, len(self.terms)))
            self.docs.append(doc)
            self.weights.append(count)

    def layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(offsets, docs, weights, term number of each posting), sorted by term then document."""
        terms = np.asarray(self.term_numbers, dtype=np.int64)
        docs = np.asarray(self.docs, dtype=np.int32)
        order = np.lexsort((docs, terms))
        return _row_offsets(terms, len(self.terms)), docs[order], \
            np.asarray(self.weights, dtype=np.float64)[order], terms[order]


def _row_offsets(rows: np.ndarray, count: int) -> np.ndarray:
    """Compressed-row offsets: where each of `count` rows starts among entries sorted by row
    (`rows` gives each entry's row, in any order), and the end."""
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=count), out=offsets[1:])
    return offsets


class ArraysWriter:
    """Collects every document's analysed fields as the Whoosh writer is fed, then writes the
    arrays (with Whoosh's encoding of each field length, see `write`)."""

    def __init__(self):
        self._scored = {name: _Postings() for name in SCORED_FIELDS}
        self._keywords = {name: _Postings() for name in KEYWORD_FIELDS}
        self._doc_lengths: dict[str, list[int]] = {name: [] for name in SCORED_FIELDS}
        self._tokens: list[int] = []
        self._token_docs: list[int] = []
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._per_doc: dict[str, list[int]] = {"dup": [], "position": [], "grade": []}
        self._dup_codes: dict[str, int] = {}
        self._ids: list[str] = []

    def add(self, snippet_id: str, fields: dict[str, Analyzed | None],
            keywords: dict[str, list[str]], dup_key: str, position: int,
            grade_tenths: int) -> None:
        doc = len(self._ids)
        self._ids.append(snippet_id)
        for name, analyzed in fields.items():
            self._doc_lengths[name].append(0 if analyzed is None else len(analyzed.stems))
            if analyzed is not None:
                self._scored[name].add(doc, analyzed.stems)
        text = fields["text"]
        terms = self._scored["text"].terms
        self._tokens += [terms[stem] for stem in text.stems]
        self._token_docs += [doc] * len(text.stems)
        self._starts += text.starts
        self._ends += text.ends
        for name, values in keywords.items():
            self._keywords[name].add(doc, values)
        self._per_doc["dup"].append(self._dup_codes.setdefault(dup_key, len(self._dup_codes)))
        self._per_doc["position"].append(position)
        self._per_doc["grade"].append(grade_tenths)

    def distinct_lengths(self) -> set[int]:
        """Every field length some document has (for `write`'s `encoded_length`)."""
        return {n for lengths in self._doc_lengths.values() for n in lengths}

    def write(self, directory: Path, encoded_length: dict[int, float]) -> None:
        """Write the two files; `encoded_length` maps each field length to what Whoosh's lossy
        one-byte encoding of it decodes to (BM25F uses those)."""
        count = len(self._ids)
        arrays: dict[str, np.ndarray] = {}
        for name, postings in self._scored.items():
            offsets, docs, weights, terms = postings.layout()
            frequencies = np.diff(offsets)
            # Whoosh's idf (WeightingModel.idf) and BM25 arithmetic, in its order of operations.
            numerators = np.array([(math.log(count / (int(n) + 1)) + 1) * (K1 + 1)
                                   for n in frequencies], dtype=np.float64)
            average = (sum(self._doc_lengths[name]) / (count or 1)) or 1
            lengths = np.array([encoded_length[n] for n in self._doc_lengths[name]],
                               dtype=np.float64)
            factors = K1 * ((1 - B) + B * lengths / average)
            arrays[f"{name}.offsets"] = offsets
            arrays[f"{name}.docs"] = docs
            arrays[f"{name}.scores"] = numerators[terms] * weights / (weights + factors[docs])
            if name == "text":  # collection frequencies: key terms and spelling use them
                arrays["text.frequencies"] = np.bincount(terms, weights=weights,
                                                         minlength=len(offsets) - 1)
        words, word_arrays = _one_word_concepts(arrays, {n: p.terms for n, p in
                                                           self._scored.items()}, count)
        arrays.update(word_arrays)
        token_docs = np.asarray(self._token_docs, dtype=np.int64)
        arrays["tokens.offsets"] = _row_offsets(token_docs, count)
        arrays["tokens.terms"] = np.asarray(self._tokens, dtype=np.int32)
        arrays["tokens.starts"] = np.asarray(self._starts, dtype=np.int32)
        arrays["tokens.ends"] = np.asarray(self._ends, dtype=np.int32)
        arrays["text.keys"], arrays["text.key_offsets"] = self._position_keys(
            token_docs, arrays["tokens.offsets"])
        for name, postings in self._keywords.items():
            offsets, docs, _, _ = postings.layout()
            arrays[f"{name}.offsets"], arrays[f"{name}.docs"] = offsets, docs
        for name, values in self._per_doc.items():
            arrays[f"doc.{name}"] = np.asarray(values, dtype=np.int32)
        terms = {name: list(p.terms) for name, p in (*self._scored.items(),
                                                      *self._keywords.items())}
        terms["word"] = words
        _write(directory, arrays, {
            "format": FORMAT, "documents": count,
            "first_id": self._ids[0] if self._ids else None,
            "last_id": self._ids[-1] if self._ids else None, "terms": terms,
            "word_concept": {"fields": [[f, w] for f, w in FIELD_BOOSTS.items()],
                             "tiebreak": DISMAX_TIEBREAK}})

    def _position_keys(self, docs: np.ndarray,
                       token_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per text term, sorted document << 32 | position (the token's number in its text),
        from each token's document and where each document's tokens start."""
        terms = np.asarray(self._tokens, dtype=np.int64)
        positions = np.arange(len(terms), dtype=np.int64) - token_offsets[docs]
        keys = (docs << 32) | positions
        order = np.lexsort((keys, terms))
        return keys[order], _row_offsets(terms, len(self._scored["text"].terms))


def _one_word_concepts(arrays: dict[str, np.ndarray], terms: dict[str, dict[str, int]],
                       count: int) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every stem's one-word concept scored at build time: what BestOf over the stem in each
    field (weighted by FIELD_BOOSTS, DISMAX_TIEBREAK) gives at search time, with the same
    arithmetic in the same order, so a plain word costs one slice."""
    words: dict[str, int] = {}
    parts = []
    for field, weight in FIELD_BOOSTS.items():
        to_word = np.array([words.setdefault(t, len(words)) for t in terms[field]],
                           dtype=np.int64)
        offsets, scores = arrays[f"{field}.offsets"], arrays[f"{field}.scores"]
        field_terms = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        parts.append((to_word[field_terms], arrays[f"{field}.docs"],
                      scores * weight if weight != 1.0 else scores))
    word = np.concatenate([p[0] for p in parts])
    docs = np.concatenate([p[1] for p in parts]).astype(np.int64)
    scores = np.concatenate([p[2] for p in parts])
    # Stable: within a (word, document), the fields stay in FIELD_BOOSTS order.
    order = np.argsort(word * max(count, 1) + docs, kind="stable")
    key = (word * max(count, 1) + docs)[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else \
        np.zeros(0, dtype=np.int64)
    scores = scores[order]
    total = np.add.reduceat(scores, starts) if len(key) else scores
    best = np.maximum.reduceat(scores, starts) if len(key) else scores
    combined = best + DISMAX_TIEBREAK * (total - best) if DISMAX_TIEBREAK else best
    return list(words), {"word.offsets": _row_offsets(word[order][starts], len(words)),
                         "word.docs": (key[starts] % max(count, 1)).astype(np.int32),
                         "word.scores": combined}


def _write(directory: Path, arrays: dict[str, np.ndarray], header: dict[str, Any]) -> None:
    layout, offset = {}, 0
    with (directory / DATA).open("wb") as handle:
        for name, values in arrays.items():
            values = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
            layout[name] = {"dtype": values.dtype.str, "offset": offset, "count": len(values)}
            data = values.tobytes()
            handle.write(data)
            padding = -len(data) % _ALIGN
            handle.write(b"\0" * padding)
            offset += len(data) + padding
        handle.flush()
    header = dict(header, bytes=offset, arrays=layout)
    with (directory / HEADER).open("w", encoding="utf-8") as handle:
        json.dump(header, handle, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class FieldPostings:
    """One field's postings: term -> number, and the compressed-row arrays."""

    terms: dict[str, int]
    offsets: np.ndarray
    docs: np.ndarray
    scores: np.ndarray | None

    def number(self, term: str) -> int | None:
        return self.terms.get(term)

    def postings(self, number: int) -> tuple[np.ndarray, np.ndarray | None]:
        start, end = int(self.offsets[number]), int(self.offsets[number + 1])
        return self.docs[start:end], None if self.scores is None else self.scores[start:end]

    def frequency(self, term: str) -> int:
        number = self.terms.get(term)
        return 0 if number is None else int(self.offsets[number + 1] - self.offsets[number])


class ScoringArrays:
    """A generation's arrays, memory-mapped read-only (pages are shared between workers)."""

    def __init__(self, directory: Path):
        try:
            with (directory / HEADER).open(encoding="utf-8") as handle:
                header = json.load(handle)
            if header.get("format") != FORMAT:
                raise ArraysDamaged(f"{HEADER} has format {header.get('format')}, "
                                    f"this service reads {FORMAT}")
            size = (directory / DATA).stat().st_size
            if size != header["bytes"]:
                raise ArraysDamaged(f"{DATA} holds {size} bytes, {HEADER} says "
                                    f"{header['bytes']}")
            # Plain ndarray views of the mapping: memmap's own slicing is slow per call.
            data = np.memmap(directory / DATA, dtype=np.uint8, mode="r").view(np.ndarray) \
                if size else np.zeros(0, dtype=np.uint8)
            arrays = {}
            for name, where in header["arrays"].items():
                dtype = np.dtype(where["dtype"])
                end = where["offset"] + where["count"] * dtype.itemsize
                if where["offset"] % _ALIGN or end > size:
                    raise ArraysDamaged(f"array {name} lies outside {DATA}")
                arrays[name] = data[where["offset"]:end].view(dtype)
            self.documents: int = header["documents"]
            self.first_id, self.last_id = header["first_id"], header["last_id"]
            terms = header["terms"]
            self.fields = {
                name: FieldPostings({t: i for i, t in enumerate(terms[name])},
                                    arrays[f"{name}.offsets"], arrays[f"{name}.docs"],
                                    arrays.get(f"{name}.scores"))
                for name in (*SCORED_FIELDS, *KEYWORD_FIELDS, "word")}
            concept = header["word_concept"]
            # The one-word concepts hold for the weights they were scored with.
            self.word_signature = (tuple((f, w) for f, w in concept["fields"]),
                                   concept["tiebreak"])
            self.keys, self.key_offsets = arrays["text.keys"], arrays["text.key_offsets"]
            self.text_terms: list[str] = terms["text"]
            self.text_frequencies = arrays["text.frequencies"]
            self._tokens = (arrays["tokens.offsets"], arrays["tokens.terms"],
                            arrays["tokens.starts"], arrays["tokens.ends"])
            self.dup_groups = arrays["doc.dup"]
            # Whether a document's duplicate group has other members (computed at open).
            self.has_duplicates = np.bincount(self.dup_groups)[self.dup_groups] > 1 \
                if len(self.dup_groups) else np.zeros(0, dtype=bool)
            self.positions = arrays["doc.position"]
            self.grades = arrays["doc.grade"]
        except ArraysDamaged:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ArraysDamaged(f"{type(exc).__name__}: {exc}") from exc
        for name, field in self.fields.items():
            if len(field.offsets) != len(field.terms) + 1 or \
                    (field.scores is not None and len(field.scores) != len(field.docs)):
                raise ArraysDamaged(f"the {name} postings do not match their term list")
        if not (len(self.dup_groups) == len(self.positions) == len(self.grades)
                == self.documents == len(self._tokens[0]) - 1):
            raise ArraysDamaged(f"per-document arrays do not hold {self.documents} documents")

    def text_frequency(self, term: str) -> float:
        """How often a text term occurs in all texts (0 if never)."""
        number = self.fields["text"].number(term)
        return 0.0 if number is None else float(self.text_frequencies[number])

    def position_keys(self, number: int) -> np.ndarray:
        """Sorted document << 32 | position of a text term's every occurrence."""
        return self.keys[int(self.key_offsets[number]):int(self.key_offsets[number + 1])]

    def tokens(self, doc: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A document's text as term numbers with their character spans, in order."""
        offsets, terms, starts, ends = self._tokens
        start, end = int(offsets[doc]), int(offsets[doc + 1])
        return terms[start:end], starts[start:end], ends[start:end]

