"""Making snippets: chunk, tag, grade and caveat each source, and analyse what it made.

A build makes them in worker processes (`analysed_sources`) while it writes the index; tests
and benchmarks call `make_snippets` for the snippets alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import multiprocessing
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .analysis import Analysis, Analyzed, make_analyzer
from .caveat_rules import CaveatMatcher
from .chunking import chunk
from .grading import reading_grade
from .seeds import Seeds
from .tagging import Tagger

Progress = Callable[[int, int, float], None]
# Worker processes for a build of at least POOL_FROM_SOURCES sources (fewer: made inline,
# where starting processes would cost more than it saves). Two, even on two cores: the full
# corpus built in 50 s with two, 57 s with one (the writing process waits on them at times).
BUILD_PROCESSES = max(1, min(2, multiprocessing.cpu_count() or 1))
POOL_FROM_SOURCES = 200


def snippet_id(source_id: str, text: str, occurrence: int) -> str:
    """Stable id from source id and content; `occurrence` separates repeats of the same text."""
    digest = hashlib.sha256(f"{source_id}\0{occurrence}\0{text}".encode()).hexdigest()
    return f"{source_id}-{digest[:12]}"


class SnippetMaker:
    """Chunks, tags, grades and caveats one source at a time, and analyses what it made for
    the index (in a build's worker processes, or inline)."""

    def __init__(self, seeds: Seeds):
        self.seeds = seeds
        self._tagger = Tagger(seeds.conditions)
        self._matcher = CaveatMatcher(seeds.caveats)
        self._analysis = Analysis(make_analyzer())

    def source(self, number: int) -> tuple[list[dict], dict]:
        """(snippets, source record) of `seeds.sources[number]`; each snippet's `position`
        counts within its source."""
        source = self.seeds.sources[number]
        tagger, matcher = self._tagger, self._matcher
        title_line, chunks = chunk(source.text)
        focus = tagger.focus(source.title)
        seen: Counter[str] = Counter()
        snippets = []
        for paragraph, piece in enumerate(chunks, start=1):
            sid = snippet_id(source.id, piece.text, seen[piece.text])
            seen[piece.text] += 1
            mentions = tagger.tag(piece.text)
            conditions = sorted(set(mentions) | ({focus} if focus else set()))
            snippets.append({
                "id": sid,
                "source_id": source.id,
                "text": piece.text,
                "title": source.title,
                "section": piece.section,
                "lead_in": piece.lead_in,
                "paragraph": paragraph,
                "position": len(snippets),
                "char_start": piece.start,
                "char_end": piece.end,
                "text_sha256": hashlib.sha256(piece.text.encode()).hexdigest(),
                "conditions": conditions,
                "mentions": mentions,
                "focus": focus,
                "reading_grade": reading_grade(piece.text),
                "caveats": matcher.match(sid, source.id, conditions, piece.text),
                "url": source.url,
                "retrieved": source.retrieved,
            })
        record = {
            "id": source.id, "title": source.title, "title_line": title_line,
            "publisher": source.publisher, "url": source.url, "retrieved": source.retrieved,
            "license": source.license, "last_reviewed": source.last_reviewed,
            "focus": focus, "characters": len(source.text),
            "text_sha256": hashlib.sha256(source.text.encode()).hexdigest(),
            "snippet_ids": [s["id"] for s in snippets],
        }
        return snippets, record

    def analysed_source(self, number: int) -> tuple[list[dict], dict, list[Fields]]:
        """`source(number)` with each snippet's text, title and section analysed."""
        snippets, record = self.source(number)
        analyse = self._analysis.analyze
        title = analyse(record["title"]) if snippets else None
        fields = [{"text": analyse(s["text"]), "title": title,
                   "section": analyse(s["section"]) if s["section"] else None}
                  for s in snippets]
        return snippets, record, fields


Fields = dict[str, Analyzed | None]
# The maker of a build's worker process (set when the pool starts it).
_WORKER_MAKER: SnippetMaker | None = None


def _start_worker(seeds: Seeds) -> None:
    global _WORKER_MAKER
    _die_with_parent()
    _WORKER_MAKER = SnippetMaker(seeds)


def _die_with_parent() -> None:
    """On Linux, ask the kernel to end this worker when the build process dies (a killed
    build must not leave workers behind)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still applies
        pass


_PR_SET_PDEATHSIG = 1


def _worker_source(number: int):
    assert _WORKER_MAKER is not None
    snippets, record, fields = _WORKER_MAKER.analysed_source(number)
    return snippets, record, [{name: None if value is None else value.pack()
                               for name, value in field.items()} for field in fields]


def _unpacked(made):
    for snippets, record, fields in made:
        yield snippets, record, [{name: None if value is None else Analyzed.unpack(value)
                                  for name, value in field.items()} for field in fields]


@contextmanager
def analysed_sources(seeds: Seeds, processes: int | None = None
                     ) -> Iterator[Iterator[tuple[list[dict], dict, list[Fields]]]]:
    """(snippets, source record, analysed fields) per source, in source order, with global
    positions. Large builds make them in worker processes while the caller writes the index
    (the two halves of a build take about as long); small ones inline."""
    if processes is None:
        processes = BUILD_PROCESSES if len(seeds.sources) >= POOL_FROM_SOURCES else 0
    if processes:
        # fork: the workers inherit the loaded seeds instead of reading them again.
        pool = multiprocessing.get_context("fork").Pool(processes, _start_worker, (seeds,))
        made = _unpacked(pool.imap(_worker_source, range(len(seeds.sources)), chunksize=16))
    else:
        pool = None
        maker = SnippetMaker(seeds)
        made = (maker.analysed_source(n) for n in range(len(seeds.sources)))

    def numbered():
        position = 0
        for snippets, record, fields in made:
            for snippet in snippets:
                snippet["position"] = position
                position += 1
            yield snippets, record, fields

    try:
        yield numbered()
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def make_snippets(seeds: Seeds, progress: Progress | None = None,
                  started: float | None = None) -> tuple[list[dict], list[dict]]:
    """Chunk, tag, grade and caveat every source. Returns (snippets, source records)."""
    maker = SnippetMaker(seeds)
    started = time.monotonic() if started is None else started
    snippets: list[dict] = []
    source_records: list[dict] = []
    for number in range(len(seeds.sources)):
        made, record = maker.source(number)
        for snippet in made:
            snippet["position"] = len(snippets)
            snippets.append(snippet)
        source_records.append(record)
        if progress:
            progress(number + 1, len(snippets), time.monotonic() - started)
    return snippets, source_records


