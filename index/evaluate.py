"""Score a Whoosh query tree term at a time, over posting lists held in memory.

Whoosh scores document at a time through a tree of Python matcher objects: every posting of
every term passes through several method calls per tree level, so a partial-match query over
common words ("condition cell") took 100-250 ms on the full corpus just to walk its tree. Here
each term's posting list is read once per generation into arrays (document numbers, BM25F
scores without boost), and a query is scored with dictionaries and set operations: the same
BM25F scores, a few milliseconds.

It also gives the compound queries the meaning query.py intends, where Whoosh 2.7.5 does not:
- DisjunctionMax is the best alternative plus `tiebreak` times the others. Whoosh ignores the
  tiebreak, and when its two sides sit on different documents takes the larger score even if
  it belongs to the other document.
- Or with `scale` (the coordination bonus) counts how many of its subqueries a document
  matches, out of how many there are. Whoosh counts term matchers and recounts them whenever
  its collector prunes exhausted ones, so a document's bonus depended on where it sat in the
  index.
A phrase reads positions only for the documents that have all its words. A tree with any
other node, or an index of several segments (`snippets build` writes one), raises Unsupported.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import OrderedDict

from whoosh import query as wq

from .scoring import InMemoryBM25F

POSTING_BUDGET = 1_000_000  # postings kept in memory per generation: 12 bytes each, 12 MB
PHRASE_BUDGET = 50_000  # phrase matches kept per generation: about 100 bytes each
_SMALL = 8  # a `within` set this many times smaller than a list is looked up, not scanned

Scores = dict[int, float]


class Unsupported(Exception):
    """A query node or an index this module does not score (the planner builds none)."""


class _Bounded:
    """Least recently used entries within a budget (the sum of `size` over the values)."""

    def __init__(self, budget: float, size=len):
        self.budget = budget
        self.held = 0
        self._size = size
        self._items: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key):
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key, value):
        self._items[key] = value
        self.held += self._size(value)
        while self.held > self.budget and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.held -= self._size(dropped)
        return value


class PostingLists:
    """Document numbers and unboosted scores of (field, term) postings, least recently used
    dropped first once the budget of postings is exceeded."""

    def __init__(self, searcher, weighting: InMemoryBM25F, budget: int = POSTING_BUDGET):
        self._searcher = searcher
        self._reader = searcher.reader()
        self._weighting = weighting
        self.cache = _Bounded(budget, size=lambda found: len(found[0]))

    def get(self, fieldname: str, text: str) -> tuple[array, array]:
        key = (fieldname, text)
        found = self.cache.get(key)
        if found is None:
            found = self.cache.put(key, self._read(fieldname, text))
        return found

    def _read(self, fieldname: str, text: str) -> tuple[array, array]:
        docnums, weights = self.decode(fieldname, text)
        if not docnums:
            return docnums, array("d")
        scorer = self._weighting.scorer(self._searcher, fieldname, text)
        factors = getattr(scorer, "_factors", None)
        if factors is None:  # not a scorable field: Whoosh scores a posting by its weight
            return docnums, array("d", weights)
        numerator = scorer._numerator
        return docnums, array("d", [numerator * w / (w + factors[d])
                                    for d, w in zip(docnums, weights, strict=True)])

    def decode(self, fieldname: str, text: str) -> tuple[array, list[float]]:
        """Document numbers and weights of a term's postings, straight from the index file."""
        docnums: array = array("i")
        weights: list[float] = []
        term = self._searcher.schema[fieldname].to_bytes(text)
        if (fieldname, term) not in self._reader:
            return docnums, weights
        postings = self._reader.postings(fieldname, term)
        # Block by block through whoosh3's block reader (whoosh-reloaded==2.7.5 is pinned):
        # the per-posting matcher API costs a method call per posting.
        while postings.is_active():
            postings._read_ids()
            postings._read_weights()
            docnums.extend(postings._ids)
            weights += postings._weights
            postings._next_block()
        return docnums, weights


class Evaluator:
    """Scores of the documents a query matches, as {document number: score}."""

    def __init__(self, searcher, postings: PostingLists):
        if not searcher.is_atomic():  # several segments: document numbers need offsets
            raise Unsupported("index has several segments")
        self._searcher = searcher
        self._reader = searcher.reader()
        self._postings = postings
        self._phrases = _Bounded(PHRASE_BUDGET)

    def scores(self, q: wq.Query, within: set[int] | None = None) -> Scores:
        """Every match of `q` (among `within` when given) with its score."""
        return self._eval(q, within)

    def _eval(self, q: wq.Query, within: set[int] | None) -> Scores:
        kind = type(q)
        if kind is wq.Term:
            scores = self._term(q.fieldname, q.text, within)
        elif kind is wq.Phrase:
            scores = self._phrase(q, within)
        elif kind is wq.And:
            scores = self._and(q.subqueries, within)
        elif kind is wq.Or:
            scores = self._or(q.subqueries, q.scale, within)
        elif kind is wq.DisjunctionMax:
            scores = self._dismax(q.subqueries, q.tiebreak, within)
        elif kind is wq.AndMaybe:
            scores = self._eval(q.a, within)
            if scores:
                extra = self._eval(q.b, set(scores))
                for docnum, score in extra.items():
                    scores[docnum] += score
        else:
            raise Unsupported(type(q).__name__)
        boost = getattr(q, "boost", 1.0)
        if boost != 1.0:
            scores = {docnum: score * boost for docnum, score in scores.items()}
        return scores

    def _term(self, fieldname: str, text: str, within: set[int] | None) -> Scores:
        docnums, scores = self._postings.get(fieldname, text)
        if within is None:
            return dict(zip(docnums, scores, strict=True))
        if len(within) * _SMALL < len(docnums):
            found = {}
            for docnum in within:
                i = bisect_left(docnums, docnum)
                if i < len(docnums) and docnums[i] == docnum:
                    found[docnum] = scores[i]
            return found
        return {d: s for d, s in zip(docnums, scores, strict=True) if d in within}

    def _phrase(self, q: wq.Phrase, within: set[int] | None) -> Scores:
        """Documents with the words next to each other in order, scored as Whoosh scores a
        phrase: the sum of its words' scores. Positions are read only for documents that
        have every word; a phrase checked over most of those is kept for the next query
        (expansions like "how many people" recur)."""
        if q.slop != 1:
            raise Unsupported("phrase with slop")
        key = (q.fieldname, tuple(q.words))
        known = self._phrases.get(key)
        if known is None:
            docnums = [self._postings.get(q.fieldname, word)[0] for word in set(q.words)]
            every = set(min(docnums, key=len)).intersection(*docnums)
            candidates = every if within is None else every & within
            if 2 * len(candidates) < len(every):
                return self._positions_match(q, candidates)
            known = self._phrases.put(key, self._positions_match(q, every))
        if within is None:
            return dict(known)
        return {d: s for d, s in known.items() if d in within}

    def _positions_match(self, q: wq.Phrase, candidates: set[int]) -> Scores:
        if not candidates:
            return {}
        lists = {word: self._postings.get(q.fieldname, word) for word in q.words}
        to_bytes = self._searcher.schema[q.fieldname].to_bytes
        readers = {word: self._reader.postings(q.fieldname, to_bytes(word)) for word in lists}
        found = {}
        for docnum in sorted(candidates):
            starts: set[int] | None = None
            for offset, word in enumerate(q.words):
                postings = readers[word]
                postings.skip_to(docnum)
                at = {p - offset for p in postings.value_as("positions")}
                starts = at if starts is None else starts & at
                if not starts:
                    break
            if starts:
                score = 0.0
                for word in q.words:
                    docnums, scores = lists[word]
                    score += scores[bisect_left(docnums, docnum)]
                found[docnum] = score
        return found

    def _and(self, subqueries: list[wq.Query], within: set[int] | None) -> Scores:
        # Narrowest first, so later parts (phrases above all) look at fewer documents.
        result: Scores | None = None
        for sub in sorted(subqueries, key=self._estimate):
            scores = self._eval(sub, within if result is None else set(result))
            if result is None:
                result = scores
            else:
                result = {d: s + scores[d] for d, s in result.items() if d in scores}
            if not result:
                return {}
        return result or {}

    def _or(self, subqueries: list[wq.Query], scale: float | None,
            within: set[int] | None) -> Scores:
        total: Scores = {}
        matched: dict[int, int] = {}
        for sub in subqueries:
            for docnum, score in self._eval(sub, within).items():
                if docnum in total:
                    total[docnum] += score
                    matched[docnum] += 1
                else:
                    total[docnum] = score
                    matched[docnum] = 1
        count = len(subqueries)
        if not scale or count < 2:
            return total
        # Whoosh's "SQR" coordination (CoordMatcher), counting subqueries: each further
        # subquery a document matches adds a bonus, scaled by `scale`.
        step = 1 / (count - scale) ** 2
        shrink = (count - 1) / count
        return {d: (s + (matched[d] - 1) * step) * shrink for d, s in total.items()}

    def _dismax(self, subqueries: list[wq.Query], tiebreak: float,
                within: set[int] | None) -> Scores:
        best: Scores = {}
        total: Scores = {}
        for sub in subqueries:
            for docnum, score in self._eval(sub, within).items():
                if docnum in best:
                    total[docnum] += score
                    if score > best[docnum]:
                        best[docnum] = score
                else:
                    best[docnum] = total[docnum] = score
        if not tiebreak:
            return best
        return {d: b + tiebreak * (total[d] - b) for d, b in best.items()}

    def _estimate(self, q: wq.Query) -> int:
        """A cheap upper bound of how many documents a query matches, for ordering."""
        if type(q) is wq.Term:
            return len(self._postings.get(q.fieldname, q.text)[0])
        if type(q) is wq.Phrase:
            return min((len(self._postings.get(q.fieldname, w)[0]) for w in q.words), default=0)
        if type(q) is wq.AndMaybe:  # matches what its required side matches
            return self._estimate(q.a)
        sizes = [self._estimate(s) for s in q.subqueries]
        return min(sizes, default=0) if type(q) is wq.And else sum(sizes)
