"""One opened, immutable index generation: verified against its manifest, with its side files,
its Whoosh segment (stored fields, lookups by id, spelling) and its scoring arrays."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from . import english, retrieval, store
from . import query as planner
from .analysis import Analysis
from .arrays import ArraysDamaged, ScoringArrays
from .build import PIPELINE_VERSION
from .english import EnglishWords
from .errors import IndexUnavailable
from .evaluate import Evaluator
from .lru import LRU
from .model import SearchQuery, SearchResult
from .suggest import SPELL_FIELD

ALSO_IN_LIMIT = 20  # other citations listed on a collapsed duplicate
RESULT_CACHE_SIZE = 256  # answers kept per generation (least recently used go first)
FILTER_CACHE_BYTES = 4_000_000  # document masks kept per generation (a byte per snippet each)
RECORD_CACHE_SIZE = 1_000  # stored snippet records kept per generation (about 3 kB each)
# Errors that mean our code is wrong, not that the index is damaged: they stay 500s.
_BUGS = (AttributeError, NameError, ImportError, AssertionError, NotImplementedError,
         TypeError)


class Generation:
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
            built_by = self.manifest.get("pipeline_version")
            if built_by != PIPELINE_VERSION:
                raise IndexUnavailable(f"index generation {self.name} was built by pipeline "
                                       f"{built_by}, this service reads {PIPELINE_VERSION}: run "
                                       "`snippets build`")
            sources = store.read_json(path / "sources.json")
            vocabulary = store.read_json(path / "conditions.json")
            caveats = store.read_json(path / "caveats.json")
            synonyms = store.read_json(path / "synonyms.json")
            self._duplicates = store.read_json(path / "duplicates.json")
            self.arrays = ScoringArrays(path)
            self.english = EnglishWords(path / english.FILE)
            self._ix = store.open_whoosh(path)
            self._searcher = self._ix.searcher()
            self._check_alignment()
        except IndexUnavailable:
            raise
        except ArraysDamaged as exc:
            raise IndexUnavailable(f"index generation {self.name} has damaged scoring arrays: "
                                   f"{exc} (rebuild with `snippets build`)") from exc
        except Exception as exc:  # a damaged generation: say why, never crash the worker
            raise IndexUnavailable(f"index generation {self.name} cannot be opened: "
                                   f"{type(exc).__name__}: {exc}") from exc
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
        self.analysis = Analysis(self._ix.schema["text"].analyzer)
        text = self.arrays.fields["text"]
        self.expander = planner.Expander(
            synonyms, self.analysis.query_stems, known=self.has_word,
            known_stem=lambda stem: text.number(stem) is not None, zipf=self.english.zipf)
        self.evaluator = Evaluator(self.arrays)
        self.filters: LRU[np.ndarray] = LRU(FILTER_CACHE_BYTES, size=lambda mask: mask.nbytes)
        self._results: LRU[SearchResult] = LRU(RESULT_CACHE_SIZE)
        self._records: LRU[dict[str, Any]] = LRU(RECORD_CACHE_SIZE)
        self._lock = threading.Lock()  # Whoosh searchers are not documented as thread-safe

    def _check_alignment(self) -> None:
        """The arrays number documents as the Whoosh segment does (one segment, same order)."""
        count = self._searcher.doc_count_all()
        arrays = self.arrays
        if not self._searcher.is_atomic() or count != arrays.documents:
            raise IndexUnavailable(f"index generation {self.name}: the scoring arrays hold "
                                   f"{arrays.documents} snippets, the Whoosh index {count}")
        def stored_id(docnum: int) -> str:
            return store.from_stored(self._searcher.stored_fields(docnum))["id"]

        if count and (stored_id(0) != arrays.first_id or stored_id(count - 1) != arrays.last_id):
            raise IndexUnavailable(f"index generation {self.name}: the scoring arrays and the "
                                   "Whoosh index number the snippets differently")

    # -- lookups ----------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self.manifest["version"]

    def snippet(self, snippet_id: str) -> dict[str, Any] | None:
        with self.whoosh() as searcher:
            docnum = searcher.document_number(id=snippet_id)
        return None if docnum is None else self.record(docnum)

    def record(self, docnum: int) -> dict[str, Any]:
        """A stored snippet with the other citations of its duplicates (kept per generation;
        treat as read-only)."""
        return self.records([docnum])[0]

    def has_word(self, word: str) -> bool:
        """Whether some snippet's text has this (folded, lower-case) word."""
        with self.whoosh() as searcher:
            return bool(searcher.doc_frequency(SPELL_FIELD, word))

    def records(self, docnums: list[int]) -> list[dict[str, Any]]:
        """`record` of each, the ones not kept read from Whoosh under one lock."""
        found = [self._records.get(docnum) for docnum in docnums]
        missing = [i for i, record in enumerate(found) if record is None]
        if missing:
            with self.whoosh() as searcher:
                stored = [searcher.stored_fields(docnums[i]) for i in missing]
            for i, fields in zip(missing, stored, strict=True):
                found[i] = self._records.put(
                    docnums[i], self._with_duplicates(store.from_stored(fields)))
        return found

    def _with_duplicates(self, record: dict[str, Any]) -> dict[str, Any]:
        members = self._duplicates.get(record.get("dup_key"), [])
        others = [m for m in members if m[0] != record["id"]]
        record["also_in"] = [
            {"id": sid, "source_id": source_id, "paragraph": paragraph,
             "title": self.sources[source_id]["title"] if source_id in self.sources else None}
            for sid, source_id, paragraph in others[:ALSO_IN_LIMIT]]
        record["also_in_total"] = len(others)
        return record

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
        with self.whoosh() as searcher:
            count = searcher.doc_count()
            if count != self.manifest["counts"]["snippets"]:
                raise IndexUnavailable(f"index generation {self.name} holds {count} snippets, "
                                       f"its manifest says {self.manifest['counts']['snippets']}")
            if count:
                searcher.stored_fields(count - 1)
                first = store.from_stored(searcher.stored_fields(0))["text"]
        if count:
            words = self.analysis.query_stems(first)[:1]
            if words:
                self.evaluator.scores(planner.Term("text", words[0]))
        return count

    def close(self) -> None:
        self._searcher.close()
        self._ix.close()

    # -- search -----------------------------------------------------------------------------

    def search(self, q: SearchQuery) -> SearchResult:
        """Hits and a total. Answers are kept per generation (a generation never changes), so
        a repeated question costs a dictionary lookup; treat results as read-only."""
        cached = self._results.get(q)
        if cached is None:
            try:
                cached = self._results.put(q, retrieval.search(self, q))
            except (IndexUnavailable, *_BUGS):
                raise
            except (OSError, ValueError, IndexError, KeyError) as exc:
                raise IndexUnavailable(f"index generation {self.name} is damaged: "
                                       f"{type(exc).__name__}: {exc}") from exc
        return cached

    @contextmanager
    def whoosh(self) -> Iterator[Any]:
        """The Whoosh searcher, one thread at a time; a damaged segment becomes
        IndexUnavailable (a 503 with the reason) instead of an unexplained 500."""
        with self._lock:
            try:
                yield self._searcher
            except (IndexUnavailable, *_BUGS):
                raise
            except Exception as exc:
                raise IndexUnavailable(f"index generation {self.name} is damaged: "
                                       f"{type(exc).__name__}: {exc}") from exc
