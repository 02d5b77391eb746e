"""BM25F with each document's field-length factor read from memory instead of the index file.

Whoosh's BM25F scorer looks up the document's field length in an on-disk column for every
posting it scores: a seek, a read and a decode, about a fifth of a cold query's time over the
full corpus. The lengths never change within a generation, so the length part of BM25
(K1 * ((1 - B) + B * length / average length)) is computed once per segment and field, at
first use, and a score is then one array lookup and a little arithmetic. The formula and the
lossy one-byte lengths are Whoosh's own, so scores are the same as Whoosh's BM25F.
"""

from __future__ import annotations

import threading
from array import array

from whoosh import scoring
from whoosh.codec import whoosh3
from whoosh.util.numeric import byte_to_length

from . import store

# Whoosh stores a field length as one byte; this is what each byte stands for.
_BYTE_LENGTHS = [float(byte_to_length(b)) for b in range(256)]


class InMemoryBM25F(scoring.BM25F):
    """Whoosh's BM25F (same B and K1) with per-document length factors kept in memory.

    Use one instance per opened searcher: the factors are cached by segment and field."""

    def __init__(self, B: float = 0.75, K1: float = 1.2):
        super().__init__(B=B, K1=K1)
        self._factors: dict[tuple[int, str], tuple[object, array]] = {}
        self._lock = threading.Lock()

    def scorer(self, searcher, fieldname, text, qf=1):
        if not searcher.schema[fieldname].scorable:
            return scoring.WeightScorer.for_(searcher, fieldname, text)
        return _Scorer(searcher, fieldname, text, self.B, self.K1, qf,
                       self._length_factors(searcher, fieldname))

    def preload(self, searcher, fieldnames) -> None:
        """Compute the factors now (at open) rather than in the first request that needs them."""
        for fieldname in fieldnames:
            self._length_factors(searcher, fieldname)

    def _length_factors(self, searcher, fieldname: str) -> array:
        reader = searcher.reader()
        key = (id(reader), fieldname)
        cached = self._factors.get(key)
        if cached is None:
            with self._lock:
                cached = self._factors.get(key)
                if cached is None:
                    parent = searcher.get_parent()
                    average = parent.avg_field_length(fieldname) or 1
                    lengths = _length_bytes(reader, fieldname)
                    factors = array("d", (self.K1 * ((1 - self.B) + self.B * _BYTE_LENGTHS[b]
                                                     / average) for b in lengths))
                    # The reader is kept with its factors so its id cannot be reused.
                    cached = self._factors[key] = (reader, factors)
        return cached[1]


def _length_bytes(reader, fieldname: str) -> list[int]:
    """The one-byte length of `fieldname` for every document of a segment (0: empty)."""
    column = f"_{fieldname}_len"
    per_doc = reader._perdoc  # SegmentReader's per-document reader (whoosh-reloaded 2.7.5)
    if not per_doc.has_column(column):
        return [0] * reader.doc_count_all()
    return store.column_values(per_doc.column_reader(column, whoosh3.LENGTHS_COLUMN))


class _Scorer(scoring.BM25FScorer):
    def __init__(self, searcher, fieldname, text, B, K1, qf, factors: array):
        super().__init__(searcher, fieldname, text, B, K1, qf=qf)
        self._factors = factors
        self._numerator = self.idf * (K1 + 1)

    def score(self, matcher):
        weight = matcher.weight()
        return self._numerator * weight / (weight + self._factors[matcher.id()])
