"""The floor under a cold query with Whoosh: reading the postings it needs, before any scoring.

    .venv/bin/python bench/perf_floor.py     # after `make bench` (uses its index and mix)

For each query of the cold mix this reads, with nothing cached, the posting lists our search
needs for it (every searched stem and expansion in the text, section and title fields), the
way index/evaluate.py reads them: Whoosh's own block decoder, then the BM25 score of each
posting (both timed, the decoding also on its own). Beside it, in the same run and
interleaved query by query, SQLite FTS5 answers the whole query (match, rank, top 10, count,
highlight). If decoding the postings alone is slower than FTS5's whole answer, no scoring
strategy on top of Whoosh's files can meet a 1.0x target. Then every posting list is loaded
first and the whole search runs again beside FTS5: what holding the index decoded in memory
would buy. Prints a table and rewrites the
section between the perf:floor markers in bench/README.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))

import perf_baselines  # noqa: E402

from index.evaluate import PostingLists  # noqa: E402
from index.query import FIELD_BOOSTS, split_query  # noqa: E402
from index.search import IndexReader, SearchQuery  # noqa: E402

WORK = BENCH / "out" / "work"
README = BENCH / "README.md"
BEGIN, END = "<!-- perf:floor:begin -->", "<!-- perf:floor:end -->"


def needed_terms(generation, text: str) -> list[tuple[str, str]]:
    """(field, stem) of every posting list our search reads for `text`."""
    plan = generation._expander.plan(*split_query(generation._codes_as_words(text)))
    stems = {stem for seq in plan.marks for stem in seq}
    return [(fieldname, stem) for stem in sorted(stems) for fieldname in FIELD_BOOSTS]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    needed = [WORK / "mix.json", WORK / "ix-main", WORK / "fts5-all.sqlite"]
    if not all(path.exists() for path in needed):
        sys.exit("perf_floor: run a full `bench/perf.py` first (it leaves the full-corpus index, "
                 f"FTS5 database and query mix in {WORK})")
    mix = json.loads((WORK / "mix.json").read_text(encoding="utf-8"))
    reader = IndexReader(WORK / "ix-main")
    generation = reader.generation()
    searcher = generation._searcher
    fts5 = perf_baselines.Fts5(WORK / "fts5-all.sqlite")
    decode_ms, read_ms, fts5_ms, postings = [], [], [], []
    for number, q in enumerate(mix):
        terms = needed_terms(generation, q["text"])

        def decode_postings(terms=terms) -> int:
            lists = PostingLists(searcher, searcher.weighting)
            return sum(len(lists.decode(fieldname, stem)[0]) for fieldname, stem in terms)

        def read_postings(terms=terms) -> int:
            lists = PostingLists(searcher, searcher.weighting)  # nothing cached
            return sum(len(lists.get(fieldname, stem)[0]) for fieldname, stem in terms)

        def answer_fts5(q=q) -> None:
            fts5.search(q["text"], q["conditions"], q["sources"])

        runs = [(decode_postings, decode_ms), (read_postings, read_ms), (answer_fts5, fts5_ms)]
        shift = number % len(runs)  # the order rotates, so noise hits all three alike
        for run, times in runs[shift:] + runs[:shift]:
            started = time.perf_counter()
            result = run()
            times.append((time.perf_counter() - started) * 1000)
            if run is read_postings:
                postings.append(result)
    # Then everything in memory: every posting list decoded and scored before the mix runs
    # (what preloading a generation would buy), each query searched in full, result cache
    # bypassed. Interleaved with FTS5 again.
    lists = generation._evaluator._postings
    lists.cache.budget = float("inf")
    started = time.perf_counter()
    for fieldname in FIELD_BOOSTS:
        for term, _ in searcher.reader().iter_field(fieldname):
            lists.get(fieldname, term.decode("utf-8") if isinstance(term, bytes) else term)
    preload_s = time.perf_counter() - started
    search_ms, fts5_again_ms = [], []
    for number, q in enumerate(mix):
        def search(q=q) -> None:
            generation._search(SearchQuery(q["text"], tuple(q["conditions"]), tuple(q["sources"])))

        def answer_fts5(q=q) -> None:
            fts5.search(q["text"], q["conditions"], q["sources"])

        runs = [(search, search_ms), (answer_fts5, fts5_again_ms)]
        for run, times in runs[number % 2:] + runs[:number % 2]:
            started = time.perf_counter()
            run()
            times.append((time.perf_counter() - started) * 1000)
    held = lists.cache.held
    reader.close()
    fts5.close()
    decode_ns = sum(decode_ms) * 1e6 / max(1, sum(postings))
    read_ns = sum(read_ms) * 1e6 / max(1, sum(postings))
    rows = [
        ("postings read per query (text, section, title)",
         f"{percentile(postings, .5):,.0f}", f"{percentile(postings, .95):,.0f}", ""),
        ("ours: decode those postings (document numbers, weights), nothing cached",
         f"{percentile(decode_ms, .5):.2f} ms", f"{percentile(decode_ms, .95):.2f} ms", ""),
        ("ours: decode and give each its BM25 score (no combining, ranking or fetching)",
         f"{percentile(read_ms, .5):.2f} ms", f"{percentile(read_ms, .95):.2f} ms", ""),
        ("SQLite FTS5: the whole query", f"{percentile(fts5_ms, .5):.2f} ms",
         f"{percentile(fts5_ms, .95):.2f} ms", ""),
        (f"ours: the whole search with all {held:,} postings already in memory "
         f"(preloading took {preload_s:.1f} s)",
         f"{percentile(search_ms, .5):.2f} ms", f"{percentile(search_ms, .95):.2f} ms",
         f"FTS5 beside it: {percentile(fts5_again_ms, .5):.2f} / "
         f"{percentile(fts5_again_ms, .95):.2f} ms"),
        ("decoding alone ÷ FTS5's whole query",
         f"{percentile(decode_ms, .5) / percentile(fts5_ms, .5):.2f}×",
         f"{percentile(decode_ms, .95) / percentile(fts5_ms, .95):.2f}×",
         f"{statistics.mean(decode_ms) / statistics.mean(fts5_ms):.2f}× on the mean"),
    ]
    table = ["| figure | p50 | p95 | |", "|---|---|---|---|"]
    table += [f"| {name} | {p50} | {p95} | {note} |" for name, p50, p95, note in rows]
    section = "\n".join([
        BEGIN,
        f"{len(mix)} cold-mix queries on the full-corpus index of the last `make bench`, "
        f"interleaved with FTS5: {decode_ns:.0f} ns per posting to decode with Whoosh's block "
        f"decoder, {read_ns:.0f} ns with its BM25 score (Python).", "", *table, END])
    print(section)
    text = README.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        README.write_text(head + section + rest.split(END, 1)[1], encoding="utf-8")


if __name__ == "__main__":
    main()
