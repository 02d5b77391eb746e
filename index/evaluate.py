"""Score a query tree (index/query.py) over a generation's scoring arrays, vectorised.

A result is the matching document numbers, ascending, with their scores (`Scored`). Leaves are
slices of the memory-mapped postings; phrases check positions by binary search from the rarest
word's occurrences; compound nodes combine results with numpy. The arithmetic is the one the
planner means, in the order the previous evaluator used, so scores are Whoosh's BM25F where a
node means what a Whoosh query means (checked in tests/test_evaluate.py against Whoosh's own
searcher):
- BestOf: the best alternative plus `tiebreak` times the others.
- AnyOf with coordination: each further part matched adds 1 / (parts - coordination)^2, the
  sum scaled by (parts - 1) / parts (Whoosh's SQR coordination, counting parts).
Every score depends only on its own document's postings, so a filter applied to the final
result is the same as a filter applied at the leaves. Concepts and phrases recur across
queries ("VNS" and its expansions, "how many people"); their results are kept per generation
within a budget of document numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arrays import ScoringArrays
from .lru import LRU
from .query import AllOf, AllWords, AnyOf, BestOf, Boost, Node, Phrase, Term

RESULT_BUDGET = 500_000  # document numbers of kept concept and phrase results (12 B each)
_DENSE_FROM = 16  # a union of more postings than documents / this is marked, not sorted
_EMPTY_DOCS = np.zeros(0, dtype=np.int32)
_EMPTY_SCORES = np.zeros(0, dtype=np.float64)


@dataclass(frozen=True)
class Scored:
    """Matching documents (ascending, distinct) and their scores."""

    docs: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.docs)

    def only(self, allowed: np.ndarray | None) -> Scored:
        """The matches a boolean mask over document numbers lets through."""
        if allowed is None or not len(self.docs):
            return self
        keep = allowed[self.docs]
        return Scored(self.docs[keep], self.scores[keep])


EMPTY = Scored(_EMPTY_DOCS, _EMPTY_SCORES)


def positions_in(docs: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `wanted`, whether it is in sorted `docs` and where."""
    at = np.searchsorted(docs, wanted)
    found = at < len(docs)
    found[found] = docs[at[found]] == wanted[found]
    return found, at


class Evaluator:
    def __init__(self, arrays: ScoringArrays, budget: int = RESULT_BUDGET):
        self._arrays = arrays
        self.kept: LRU[Scored] = LRU(budget, size=len)

    def scores(self, node: Node, allowed: np.ndarray | None = None) -> Scored:
        """Every match of `node` (among `allowed` when given) with its score."""
        return self._eval(node).only(allowed)

    def _eval(self, node: Node) -> Scored:
        kind = type(node)
        if kind is Term:
            return self._term(node.field, node.stem, node.weight)
        if kind in (BestOf, Phrase):  # recurring pieces: kept per generation
            found = self.kept.get(node)
            if found is None:
                found = self.kept.put(node, self._best_of(node) if kind is BestOf
                                      else self._phrase(node))
            return found
        if kind is AllWords:
            return self._all_of([Term(node.field, s) for s in node.stems], node.weight)
        if kind is AllOf:
            return self._all_of(node.parts)
        if kind is AnyOf:
            return self._any_of(node.parts, node.coordination)
        if kind is Boost:
            return self._boost(node)
        raise TypeError(f"not a query node: {node!r}")

    def _term(self, field: str, stem: str, weight: float = 1.0) -> Scored:
        postings = self._arrays.fields[field]
        number = postings.number(stem)
        if number is None:
            return EMPTY
        docs, scores = postings.postings(number)
        if scores is None:  # a keyword field: each posting weighs 1, as Whoosh's do
            scores = np.ones(len(docs), dtype=np.float64)
        return Scored(docs, scores * weight if weight != 1.0 else scores)

    def _phrase(self, node: Phrase) -> Scored:
        """Documents with the stems next to each other in order; the sum of the stems'
        scores. Occurrences are checked from the rarest stem's, by binary search in the
        others' sorted document << 32 | position keys."""
        text = self._arrays.fields["text"]
        numbers = [text.number(stem) for stem in node.stems]
        if any(n is None for n in numbers):
            return EMPTY
        keys = [self._arrays.position_keys(n) for n in numbers]
        rarest = min(range(len(keys)), key=lambda i: len(keys[i]))
        starts = keys[rarest] - rarest  # where the phrase would start
        for offset, word_keys in enumerate(keys):
            if offset == rarest or not len(starts):
                continue
            found, _ = positions_in(word_keys, starts + offset)
            starts = starts[found]
        if not len(starts):
            return EMPTY
        docs = np.unique((starts >> 32).astype(np.int32))
        total = np.zeros(len(docs), dtype=np.float64)
        for number in numbers:
            word_docs, word_scores = text.postings(number)
            total += word_scores[np.searchsorted(word_docs, docs)]
        return Scored(docs, total * node.weight if node.weight != 1.0 else total)

    def _estimate(self, node: Node) -> int:
        """A cheap upper bound of how many documents a node matches, for ordering."""
        kind = type(node)
        if kind is Term:
            return self._arrays.fields[node.field].frequency(node.stem)
        if kind is Phrase:
            return min(self._arrays.fields["text"].frequency(s) for s in node.stems)
        if kind is AllWords:
            return min(self._arrays.fields[node.field].frequency(s) for s in node.stems)
        if kind is Boost:  # matches what its core matches
            return self._estimate(node.core)
        parts = node.alternatives if kind is BestOf else node.parts
        sizes = [self._estimate(p) for p in parts]
        return min(sizes, default=0) if kind is AllOf else sum(sizes)

    def _all_of(self, parts, weight: float = 1.0) -> Scored:
        # Narrowest first, so the running intersection stays small.
        result: Scored | None = None
        for part in sorted(parts, key=self._estimate):
            scored = self._eval(part)
            if result is None:
                result = scored
            else:
                found, at = positions_in(scored.docs, result.docs)
                result = Scored(result.docs[found],
                                result.scores[found] + scored.scores[at[found]])
            if not len(result):
                return EMPTY
        if result is None:
            return EMPTY
        return Scored(result.docs, result.scores * weight) if weight != 1.0 else result

    def _union(self, parts) -> tuple[np.ndarray, np.ndarray, list[Scored]]:
        """Distinct documents of the parts' results and, per concatenated posting, its
        document's index among them."""
        results = [self._eval(p) for p in parts]
        docs = np.concatenate([r.docs for r in results]) if results else _EMPTY_DOCS
        if len(docs) < self._arrays.documents // _DENSE_FROM:
            distinct, inverse = np.unique(docs, return_inverse=True)
            return distinct, inverse, results
        # Many postings: mark them in a document-sized array instead of sorting them.
        seen = np.zeros(self._arrays.documents, dtype=bool)
        seen[docs] = True
        distinct = np.flatnonzero(seen).astype(np.int32)
        return distinct, (np.cumsum(seen) - 1)[docs], results

    def _any_of(self, parts, coordination: float | None) -> Scored:
        distinct, inverse, results = self._union(parts)
        if not len(distinct):
            return EMPTY
        scores = np.concatenate([r.scores for r in results])
        # bincount adds in input order: each document's sum is in the parts' order.
        total = np.bincount(inverse, weights=scores, minlength=len(distinct))
        count = len(parts)
        if not coordination or count < 2:
            return Scored(distinct, total)
        matched = np.bincount(inverse, minlength=len(distinct)).astype(np.float64)
        step = 1 / (count - coordination) ** 2
        shrink = (count - 1) / count
        return Scored(distinct, (total + (matched - 1) * step) * shrink)

    def _best_of(self, node: BestOf) -> Scored:
        word = self._one_word(node)
        if word is not None:
            return word
        distinct, inverse, results = self._union(node.alternatives)
        if not len(distinct):
            return EMPTY
        scores = np.concatenate([r.scores for r in results])
        best = np.full(len(distinct), -np.inf)
        np.maximum.at(best, inverse, scores)
        if not node.tiebreak:
            return Scored(distinct, best)
        total = np.bincount(inverse, weights=scores, minlength=len(distinct))
        return Scored(distinct, best + node.tiebreak * (total - best))

    def _one_word(self, node: BestOf) -> Scored | None:
        """The build's score of a one-word concept (a stem in every field, weighted as the
        arrays were built), or None when `node` is something else."""
        alternatives = node.alternatives
        if not alternatives or any(type(a) is not Term for a in alternatives):
            return None
        stem = alternatives[0].stem
        if any(a.stem != stem for a in alternatives) or self._arrays.word_signature != (
                tuple((a.field, a.weight) for a in alternatives), node.tiebreak):
            return None
        return self._term("word", stem)

    def _boost(self, node: Boost) -> Scored:
        core = self._eval(node.core)
        if not len(core):
            return EMPTY
        extra = self._eval(node.extra)
        found, at = positions_in(core.docs, extra.docs)
        if not found.any():
            return core
        scores = core.scores.copy()
        scores[at[found]] += extra.scores[found]
        return Scored(core.docs, scores)
