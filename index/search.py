"""Search the index in service: open CURRENT once, reopen when a new generation is switched in.

The service talks to the index only through this module: `IndexReader.generation()` gives the
generation in service, and `Generation.search(SearchQuery)` returns hits and a total. User text
is never handed to a query parser: words and quoted phrases become Whoosh query objects here,
so no input can raise a parser error.
"""

from __future__ import annotations

import heapq
import html
import re
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whoosh import query as wq

from . import query as planner
from . import store
from .build import PIPELINE_VERSION, current_generation, current_pointer
from .errors import IndexUnavailable
from .evaluate import Evaluator, PostingLists, Unsupported
from .query import split_query
from .scoring import InMemoryBM25F

_MAX_CORRECTIONS_BELOW = 3  # suggest a spelling when a query finds fewer hits than this
# Errors that mean our code is wrong, not that the index is damaged: they stay 500s.
_BUGS = (AttributeError, NameError, ImportError, AssertionError, NotImplementedError,
         Unsupported)
ALSO_IN_LIMIT = 20  # other citations listed on a collapsed duplicate
FILL_BELOW = 10  # fewer all-concept matches than this: partial matches fill the list
RESULT_CACHE_SIZE = 512  # answers kept per generation (least recently used go first)
FILTER_CACHE_SIZE = 256  # document sets kept per generation for condition/source/grade filters
# A problem-list code typed into q: ICD-10-CM (letter, digit, digit or letter, .subcode).
_ICD_IN_TEXT = re.compile(r"(?<![\w.])([A-TV-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)(?![\w.])")


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    conditions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    max_grade: float | None = None
    limit: int = 10
    offset: int = 0


@dataclass
class SearchResult:
    hits: list[dict[str, Any]]
    total: int
    words: list[str] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)
    match: str = "all"  # "all" words matched, or "any" after relaxing a query that found nothing
    suggestion: str | None = None


class Generation:
    """One opened, immutable index generation with its side files."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        try:
            self.manifest = store.read_json(path / store.MANIFEST)
            expected = self.manifest.get("files", {})
            damaged = store.missing_files(path, expected) + store.damaged_files(path, expected)
            if damaged:
                raise IndexUnavailable(f"index generation {self.name} is damaged: "
                                       f"{', '.join(damaged)} missing or not as its manifest "
                                       "records (rebuild with `snippets build`)")
            sources = store.read_json(path / "sources.json")
            vocabulary = store.read_json(path / "conditions.json")
            caveats = store.read_json(path / "caveats.json")
            synonyms = store.read_json(path / "synonyms.json")
            self._duplicates = store.read_json(path / "duplicates.json")
            self._ix = store.open_whoosh(path)
            weighting = InMemoryBM25F()
            self._searcher = self._ix.searcher(weighting=weighting)
            weighting.preload(self._searcher, planner.FIELD_BOOSTS)
            # Every query is scored by the evaluator. It reads one-segment generations, which
            # is what `snippets build` writes; any other is refused here with the reason.
            self._evaluator = Evaluator(self._searcher, PostingLists(self._searcher, weighting))
        except IndexUnavailable:
            raise
        except Exception as exc:  # a damaged generation: say why, never crash the worker
            raise IndexUnavailable(f"index generation {self.name} cannot be opened: "
                                   f"{type(exc).__name__}: {exc}") from exc
        built_by = self.manifest.get("pipeline_version")
        if built_by != PIPELINE_VERSION:
            self.close()
            raise IndexUnavailable(f"index generation {self.name} was built by pipeline "
                                   f"{built_by}, this service reads {PIPELINE_VERSION}: run "
                                   "`snippets build`")
        self.sources = {s["id"]: s for s in sources}
        self.conditions = vocabulary["conditions"]
        self.vocabulary_meta = vocabulary.get("meta", {})
        self.caveats = {c["id"]: c for c in caveats}
        self._neighbours: dict[str, tuple[str | None, str | None]] = {}
        for source in sources:
            ids = source["snippet_ids"]
            for i, sid in enumerate(ids):
                self._neighbours[sid] = (ids[i - 1] if i else None,
                                         ids[i + 1] if i + 1 < len(ids) else None)
        self._analyzer = self._ix.schema["text"].analyzer
        self._expander = planner.Expander(synonyms, self._terms)
        self._lock = threading.Lock()  # Whoosh searchers are not documented as thread-safe
        self._cache: OrderedDict[tuple, SearchResult] = OrderedDict()
        self._filters: dict[str, set[int]] = {}
        # By document number, read once: collapsing looks up a duplicate group per match
        # (equal numbers, same group), listing sorts by position.
        self._dup_keys = store.column_codes(self._searcher.reader(), "dup_key")
        self._positions = store.column_codes(self._searcher.reader(), "position")
        self._cache_lock = threading.Lock()

    # -- lookups ----------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self.manifest["version"]

    def snippet(self, snippet_id: str) -> dict[str, Any] | None:
        with self._guard():
            fields = self._searcher.document(id=snippet_id)
        return self._record(fields) if fields else None

    def neighbours(self, snippet_id: str) -> tuple[str | None, str | None]:
        return self._neighbours.get(snippet_id, (None, None))

    def conditions_for_code(self, system: str, code: str) -> list[str]:
        """Slugs whose codes cover `code`. ICD-10-CM matches when an entry code is a prefix of
        the query code (F43.10 -> F43.1), compared without dots; SNOMED CT matches exactly."""
        if system == "icd10cm":
            wanted = code.replace(".", "").upper()
            return [c["slug"] for c in self.conditions
                    if any(wanted.startswith(e.replace(".", "").upper())
                           for e in c["codes"].get("icd10cm", []))]
        return [c["slug"] for c in self.conditions if code in c["codes"].get(system, [])]

    def probe(self) -> int:
        """Read the first and last snippet and run one search: damage shows up here as
        IndexUnavailable rather than in a patient's request. Returns the snippet count."""
        with self._guard():
            count = self._searcher.doc_count()
            if count != self.manifest["counts"]["snippets"]:
                raise IndexUnavailable(f"index generation {self.name} holds {count} snippets, "
                                       f"its manifest says {self.manifest['counts']['snippets']}")
            if count:
                self._searcher.stored_fields(count - 1)
                words = self._terms(self._searcher.stored_fields(0)["text"])[:1]
                if words:
                    self._searcher.search(wq.Term("text", words[0]), limit=1)
            return count

    def close(self) -> None:
        self._searcher.close()
        self._ix.close()

    # -- search -----------------------------------------------------------------------------

    def _terms(self, text: str) -> list[str]:
        return [t.text for t in self._analyzer(text, mode="query")]

    def _filter(self, q: SearchQuery) -> wq.Query | None:
        parts: list[wq.Query] = []
        if q.conditions:
            parts.append(wq.Or([wq.Term("conditions", c) for c in q.conditions]))
        if q.sources:
            parts.append(wq.Or([wq.Term("source_id", s) for s in q.sources]))
        if q.max_grade is not None:
            parts.append(wq.NumericRange("grade_tenths", None, round(q.max_grade * 10)))
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else wq.And(parts)

    def _codes_as_words(self, text: str) -> str:
        """An ICD-10-CM code typed into q (M79.7) stands for its condition's label."""
        def label(match: re.Match) -> str:
            slugs = self.conditions_for_code("icd10cm", match.group(1))
            labels = [c["label"] for c in self.conditions if c["slug"] in slugs]
            return f" {' '.join(labels)} " if labels else match.group(0)
        return _ICD_IN_TEXT.sub(label, text)

    def search(self, q: SearchQuery) -> SearchResult:
        """Hits and a total for a query. Answers are cached per generation (a generation never
        changes), so a repeated question costs a dictionary lookup; treat results as read-only."""
        key = (" ".join(q.text.split()), q.conditions, q.sources, q.max_grade, q.limit, q.offset)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        result = self._search(q)
        with self._cache_lock:
            self._cache[key] = result
            if len(self._cache) > RESULT_CACHE_SIZE:
                self._cache.popitem(last=False)
        return result

    def _search(self, q: SearchQuery) -> SearchResult:
        words, phrases = split_query(q.text)
        filter_q = self._filter(q)
        with self._guard():
            if not q.text.strip():
                return self._browse(q, filter_q)
            if not words and not phrases:  # "*", "?", an emoji: nothing to search for
                return SearchResult([], 0, words, phrases)
            if filter_q is not None and not self._allowed(filter_q):
                # Whoosh counts an empty filter as no filter at all: answer that case here.
                return SearchResult([], 0, words, phrases)
            plan = self._expander.plan(*split_query(self._codes_as_words(q.text)))
            focus = list(dict.fromkeys([*plan.conditions, *q.conditions]))
            result = self._run(q, plan, focus, filter_q)
            result.words, result.phrases = words, phrases
            if result.total < _MAX_CORRECTIONS_BELOW:
                result.suggestion = self._suggest(q, words, filter_q, result.total)
            return result

    def _run(self, q: SearchQuery, plan: planner.Plan, focus: list[str],
             filter_q: wq.Query | None) -> SearchResult:
        """Snippets with every concept first. While they are fewer than a page, looser matches
        follow (and `match` says "any"): snippets with some of the telling concepts; then, if
        some snippet had one, snippets with only the common ones (just "VNS"), most like the
        answers above them first. So a narrow question still gets a full page."""
        strict_q = planner.build(plan, False, focus)
        if strict_q is None:  # only stop words, e.g. "the"
            return SearchResult([], 0)
        wanted = q.offset + q.limit
        # The same paragraph in several sources is one result; the others go in also_in.
        ranked, total = self._collapsed(strict_q, filter_q, wanted)
        strict_total = total
        if total < FILL_BELOW and len(plan.concepts) > 1:
            common = self._common_concepts(plan)
            loose_q = planner.build(plan, True, focus, common)
            ranked, total = self._followed_by(ranked, total, loose_q, filter_q, wanted)
            if 0 < total < FILL_BELOW and 0 < len(common) < len(plan.concepts):
                fill_q = planner.like(planner.build(plan, True, focus),
                                      self._key_terms(plan, ranked))
                ranked, total = self._followed_by(ranked, total, fill_q, filter_q, wanted)
        hits = []
        for fields, score in ranked[q.offset:wanted]:
            record = self._record(fields)
            record["score"] = round(score, 4)
            record["highlight"] = self.highlight(record["text"], plan.marks)
            hits.append(record)
        return SearchResult(hits, total, match="all" if total == strict_total else "any")

    def _followed_by(self, ranked: list[tuple[dict[str, Any], float]], total: int,
                     looser_q: wq.Query, filter_q: wq.Query | None,
                     wanted: int) -> tuple[list[tuple[dict[str, Any], float]], int]:
        """`ranked` followed by the other matches of a looser query (which matches everything
        the `total` before it did), and the new distinct total. Either `ranked` holds all
        `total` matches or at least the `wanted` shown, so what is appended never changes a
        page already cut from it, and it is cut from the same order on every page."""
        more, more_total = self._collapsed(looser_q, filter_q, total + wanted)
        if more_total <= total:
            return ranked, total
        shown = {fields["dup_key"] for fields, _ in ranked}
        return ranked + [hit for hit in more if hit[0]["dup_key"] not in shown], more_total

    def _key_terms(self, plan: planner.Plan,
                   found: list[tuple[dict[str, Any], float]]) -> list[tuple[str, float]]:
        """The words that most distinguish the snippets found so far from the rest of the
        index (Whoosh's Bo1 model), other than those the query already scores on their own
        (typed words, one-word alternatives), with weights up to 1. A word of a longer
        expansion ("electrical" in "electrical stimulation of the vagus nerve") can be one."""
        searched: set[str] = set()
        for concept in plan.concepts:
            searched.update(concept.exact)
            searched.update(e[0] for e in concept.expansions if len(e) == 1)
        text = "\n\n".join(fields["text"] for fields, _ in found)
        terms = self._searcher.key_terms_from_text(
            "text", text, numterms=planner.FEEDBACK_TERMS + len(searched))
        return [(t, w) for t, w in terms if t not in searched][:planner.FEEDBACK_TERMS]

    def _common_concepts(self, plan: planner.Plan) -> frozenset[int]:
        """Positions of concepts whose typed words are in most snippets."""
        half = self._searcher.doc_count() / 2
        return frozenset(
            i for i, concept in enumerate(plan.concepts)
            if all(self._searcher.doc_frequency("text", stem) > half for stem in concept.exact))

    def _collapsed(self, text_q: wq.Query, filter_q: wq.Query | None,
                   limit: int) -> tuple[list[tuple[dict[str, Any], float]], int]:
        """Top (stored fields, score) with one per duplicate group, and the distinct total.

        Every match is scored (collapsing and the total need them all), then the best are
        ordered by score and position, so ties are cut the same way on every page; the first
        of each duplicate group stands for it. The filter is a cached set of document numbers."""
        scores = self._evaluator.scores(text_q, self._allowed(filter_q))
        keys = self._dup_keys
        total = len({keys[docnum] for docnum in scores})

        def order(item: tuple[int, float]) -> tuple[float, int]:
            return -round(item[1], 6), item[0]

        wanted = min(limit, total)
        take = 2 * wanted + 10  # duplicates of the best can push some of them further down
        while True:
            if take < len(scores):
                # The best by raw score, widened to every score that rounds the same as
                # the last of them, so ties are still cut by position.
                floor = round(heapq.nlargest(take, scores.values())[-1], 6) - 1e-6
                best = sorted([item for item in scores.items() if item[1] >= floor], key=order)
            else:
                best = sorted(scores.items(), key=order)
            seen: set[int] = set()  # duplicate-group numbers (store.column_codes)
            firsts = [(docnum, score) for docnum, score in best
                      if not (keys[docnum] in seen or seen.add(keys[docnum]))]
            if len(firsts) >= wanted or len(best) == len(scores):
                break
            take *= 4
        stored = self._searcher.stored_fields
        return [(stored(docnum), score) for docnum, score in firsts[:limit]], total

    def _allowed(self, filter_q: wq.Query | None) -> set[int] | None:
        """The documents a filter (or any document-set query) lets through, computed once per
        generation and query."""
        if filter_q is None:
            return None
        key = repr(filter_q)
        allowed = self._filters.get(key)
        if allowed is None:
            allowed = set(self._searcher.docs_for_query(filter_q))
            if len(self._filters) >= FILTER_CACHE_SIZE:
                self._filters.pop(next(iter(self._filters)))
            self._filters[key] = allowed
        return allowed

    def _record(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A stored snippet with the other citations of its duplicates."""
        record = store.from_stored(fields)
        members = self._duplicates.get(record.get("dup_key"), [])
        others = [m for m in members if m[0] != record["id"]]
        record["also_in"] = [
            {"id": sid, "source_id": source_id, "paragraph": paragraph,
             "title": self.sources[source_id]["title"] if source_id in self.sources else None}
            for sid, source_id, paragraph in others[:ALSO_IN_LIMIT]]
        record["also_in_total"] = len(others)
        return record

    def _browse(self, q: SearchQuery, filter_q: wq.Query | None) -> SearchResult:
        """No query text: snippets that mention a requested condition in an article about it
        first, then those that mention it elsewhere, then those only in an article about it;
        each group in source and paragraph order."""
        # Document sets come from the same per-generation cache as search filters.
        matched = list(self._allowed(filter_q) if filter_q is not None
                       else self._searcher.reader().all_doc_ids())
        mentioning: set[int] = set()
        focused: set[int] = set()
        if q.conditions:
            mentioning = self._allowed(wq.Or([wq.Term("mentions", c) for c in q.conditions]))
            focused = self._allowed(wq.Or([wq.Term("focus", c) for c in q.conditions]))
        position = self._positions
        matched.sort(key=lambda d: (d not in mentioning, d not in focused, position[d]))
        # Duplicates collapse to their first appearance in this order.
        seen: set[int] = set()
        distinct = [d for d in matched
                    if not (self._dup_keys[d] in seen or seen.add(self._dup_keys[d]))]
        hits = []
        for docnum in distinct[q.offset:q.offset + q.limit]:
            record = self._record(self._searcher.stored_fields(docnum))
            record["score"] = None
            record["highlight"] = html.escape(record["text"], quote=False)
            hits.append(record)
        return SearchResult(hits, len(distinct))

    def _suggest(self, q: SearchQuery, words: list[str], filter_q: wq.Query | None,
                 found: int) -> str | None:
        """A spelling correction from the index's own words, offered only if it finds more."""
        corrector = self._searcher.corrector("text")
        suggestion = q.text
        changed = False
        for word in dict.fromkeys(words):
            if len(word) < 3 or word.isdigit() or not self._terms(word):
                continue
            lowered = word.lower()
            if self._searcher.doc_frequency("spell_text", lowered) or self._expander.knows(word):
                continue
            options = corrector.suggest(lowered, limit=1, maxdist=2)
            if options and options[0] != lowered:
                suggestion = re.sub(rf"\b{re.escape(word)}\b", options[0], suggestion)
                changed = True
        if not changed:
            return None
        suggestion = " ".join(suggestion.split())
        plan = self._expander.plan(*split_query(suggestion))
        corrected = planner.build(plan, False, [])
        if corrected is None:
            return None
        _, better = self._collapsed(corrected, filter_q, 1)
        return suggestion if better > found else None

    def highlight(self, text: str, marks: set[tuple[str, ...]]) -> str:
        """The text HTML-escaped, with <mark> around each place a searched stem sequence (a
        word, or a phrase or expansion in full) occurs."""
        # Whoosh reuses one Token object while iterating: copy what we need as we go.
        tokens = [(t.text, t.startchar, t.endchar)
                  for t in self._analyzer(text, chars=True, mode="index")]
        stems = [stem for stem, _, _ in tokens]
        marked = [False] * len(tokens)
        for seq in marks:
            for i in range(len(stems) - len(seq) + 1):
                if tuple(stems[i:i + len(seq)]) == seq:
                    marked[i:i + len(seq)] = [True] * len(seq)
        out, last = [], 0
        for (_, start, end), mark in zip(tokens, marked, strict=True):
            if mark:
                out.append(html.escape(text[last:start], quote=False))
                out.append(f"<mark>{html.escape(text[start:end])}</mark>")
                last = end
        out.append(html.escape(text[last:], quote=False))
        return "".join(out)

    @contextmanager
    def _guard(self):
        """Serialise searcher use, and turn a damaged segment into IndexUnavailable (a 503
        with the reason) instead of an unexplained 500."""
        with self._lock:
            try:
                yield
            except (IndexUnavailable, *_BUGS):
                raise
            except Exception as exc:
                raise IndexUnavailable(f"index generation {self.name} is damaged: "
                                       f"{type(exc).__name__}: {exc}") from exc


class IndexReader:
    """Per-process handle on an index directory; cheap to ask for the current generation.

    Each call reads the CURRENT symlink (one readlink) and opens a fresh Generation only when
    the pointer has moved. The previous generation stays open until the next switch, so a
    request that started on it can finish.
    """

    def __init__(self, index_dir: Path | str):
        self.index_dir = Path(index_dir)
        self._current: Generation | None = None
        self._previous: Generation | None = None
        self._lock = threading.Lock()

    def generation(self) -> Generation:
        name = Path(current_pointer(self.index_dir)).name
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
