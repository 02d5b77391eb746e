"""Retrieval quality: our search against a plain SQLite FTS5 bm25 baseline (`make eval`).

Five query sets:
  seeds      bench/judged_queries.yaml, hand-judged queries over the five seed articles;
  lay        bench/judged_lay.yaml, patient wording on the seeds (same format);
  no-answer  bench/judged_no_answer.yaml, questions the seeds do not cover (right answer: none);
  corpus     queries derived reproducibly from ../shared/corpus/medquad-pages.jsonl (page title +
             section type), answered by that section of that page (bench/eval_sets.py);
  consumer   bench/judged_consumer.yaml, long consumer questions on the corpus judged by page
             section (bench/eval_judged.py).
The first three are asked of the seed index, the last two of the corpus index. Each set is
searched by our engine (index.build.build, then IndexReader(...).generation()
.search(SearchQuery(...)), the public API only, reading `hits`) and by FTS5 over exactly the
same snippets (index.build.make_snippets on the same inputs). Metrics (bench/eval_metrics.py):
hit@1, hit@3, hit@10, MRR@10, nDCG@10, P@10, R@10 and the share of empty answers; targets in
bench/eval_report.py (TARGETS).

The full run indexes all 5,490 corpus pages; --quick (or --pages N) indexes the first 1,000
(N) plus the pages the consumer set judges, and asks 100 corpus queries. Built indexes and
snippet lists are kept in bench/out/cache/ (gitignored), keyed by a hash of their inputs: the
seeds directory, the corpus (or partial pages) file, and the source of every index module the
build imports (index/search.py is read at query time and is not part of the key, so changing
the search needs no rebuild). --rebuild ignores the cache.

The results table goes to stdout, per-query details to bench/out/eval-last.json, and (full
runs only) the table with the date and machine into bench/README.md between the
`<!-- eval:begin -->` / `<!-- eval:end -->` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import eval_metrics as metrics
import eval_report as report
from eval_fts import Fts5Baseline
from eval_judged import judged_pages, load_consumer, load_lay, load_no_answer
from eval_sets import EvalQuery, corpus_queries, load_judged

from index.build import build, make_snippets
from index.seeds import load

ROOT = Path(__file__).resolve().parents[1]

SEEDS_DIR = ROOT / "seeds"
CORPUS = ROOT.parent / "shared" / "corpus" / "medquad-pages.jsonl"
BENCH = ROOT / "bench"
JUDGED = BENCH / "judged_queries.yaml"
LAY = BENCH / "judged_lay.yaml"
NO_ANSWER = BENCH / "judged_no_answer.yaml"
CONSUMER = BENCH / "judged_consumer.yaml"
OUT = BENCH / "out"
CACHE = OUT / "cache"
README = BENCH / "README.md"
CORPUS_SEED = 7  # random.Random seed for the corpus set (issue 7)
FULL_QUERIES, QUICK_QUERIES = 300, 100
QUICK_PAGES = 1000
SNIPPET_FIELDS = ("id", "source_id", "text", "section", "paragraph", "char_start", "conditions")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- cache ----------------------------------------------------------------------------------

def _build_modules() -> list[Path]:
    """Source files of the index modules loaded so far: at this point, what index.build
    imports (index.search is imported only later, when searching)."""
    index_dir = ROOT / "index"
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().is_relative_to(index_dir):
            files.add(Path(path).resolve())
    return sorted(files)


def _hash_file(digest: Any, path: Path) -> None:
    digest.update(str(path.relative_to(ROOT.parent)).encode() + b"\0")
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(b"\0")


def cache_key(pages: Path | None, pages_limit: int | None, modules: list[Path]) -> str:
    import whoosh

    digest = hashlib.sha256(b"eval-cache-1\0")
    digest.update(f"{sys.version}\0{whoosh.versionstring()}\0{pages_limit}\0".encode())
    for path in modules:
        _hash_file(digest, path)
    for path in sorted(p for p in SEEDS_DIR.rglob("*") if p.is_file()):
        _hash_file(digest, path)
    if pages is not None:
        _hash_file(digest, pages)
    return digest.hexdigest()[:16]


def partial_corpus(limit: int) -> tuple[Path, int]:
    """For --quick / --pages: a pages file (in bench/out/cache, gitignored) holding the first
    `limit` corpus pages plus the pages the consumer set judges, so a partial run still asks
    every consumer question. Returns the file and how many judged pages were added."""
    wanted = judged_pages(CONSUMER)
    kept, added = [], 0
    with CORPUS.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if not line.strip():
                continue
            if number < limit:
                kept.append(line)
            elif json.loads(line)["id"] in wanted:
                kept.append(line)
                added += 1
    text = "".join(line if line.endswith("\n") else line + "\n" for line in kept)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"pages-first{limit}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.jsonl"
    if not path.is_file():
        for old in CACHE.glob(f"pages-first{limit}-*.jsonl"):
            old.unlink()
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path, added


class Workspace:
    """bench/out/cache/<name>-<key>/: an index directory and the snippet list, for one set of
    inputs. Others of the same name (older inputs) are removed."""

    def __init__(self, name: str, key: str, rebuild: bool):
        self.dir = CACHE / f"{name}-{key}"
        CACHE.mkdir(parents=True, exist_ok=True)
        for old in CACHE.glob(f"{name}-*"):
            if old != self.dir and old.name.rsplit("-", 1)[0] == name:
                shutil.rmtree(old, ignore_errors=True)
        if rebuild:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.index = self.dir / "index"
        self.snippets_file = self.dir / "snippets.json"

    @property
    def index_ready(self) -> bool:
        return (self.index / "CURRENT").is_symlink()

    def snippets(self, seeds: Any) -> list[dict[str, Any]]:
        """make_snippets on the inputs, saved once (about 35 s for the whole corpus)."""
        if self.snippets_file.is_file():
            return json.loads(self.snippets_file.read_text(encoding="utf-8"))
        made, _ = make_snippets(seeds)
        slim = [{k: s[k] for k in SNIPPET_FIELDS} for s in made]
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.snippets_file.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(slim), encoding="utf-8")
        os.replace(tmp, self.snippets_file)
        return slim


# -- running the engines --------------------------------------------------------------------

Ranked = list[list[list[str]]]  # per query, per hit, the snippet ids the hit stands for


def run_ours(index_dir: Path, query_sets: list[list[EvalQuery]]) -> tuple[list[Ranked], float]:
    from index.search import IndexReader, SearchQuery

    reader = IndexReader(index_dir)
    generation = reader.generation()
    answers = []
    started = time.monotonic()
    for queries in query_sets:
        ranked = []
        for q in queries:
            result = generation.search(SearchQuery(text=q.text, conditions=q.conditions,
                                                   limit=10))
            ranked.append([metrics.hit_ids(hit.record) for hit in result.hits][:10])
        answers.append(ranked)
    seconds = time.monotonic() - started
    reader.close()
    return answers, seconds


def run_fts(fts: Fts5Baseline, queries: list[EvalQuery]) -> tuple[Ranked, float]:
    started = time.monotonic()
    ranked = [[[sid] for sid in fts.search(q.text, q.conditions, 10)] for q in queries]
    return ranked, time.monotonic() - started


def _row(q: EvalQuery) -> dict[str, Any]:
    return {"id": q.qid, "q": q.text, "conditions": list(q.conditions), "tags": list(q.tags),
            "meta": q.meta, "judged": len(q.grades), "grades": q.grades}


def evaluate(name: str, queries: list[EvalQuery], ours: Ranked, fts: Ranked) -> dict[str, Any]:
    """A set with judged snippets: per-query scores and their means, for both engines."""
    rows, scored = [], []
    for q, our_ranked, fts_ranked in zip(queries, ours, fts, strict=True):
        pair = (metrics.score(our_ranked, q.grades, q.units),
                metrics.score(fts_ranked, q.grades, q.units))
        scored.append(pair)
        row = _row(q)
        for engine, s, ranked in (("ours", pair[0], our_ranked), ("fts5", pair[1], fts_ranked)):
            row[engine] = {"ndcg": round(s.ndcg, 4), "first": s.first, "gains": s.gains,
                           "precision": s.precision, "recall": round(s.recall, 4),
                           "hits": ranked}
        rows.append(row)
    ours_mean = metrics.mean([a for a, _ in scored])
    fts_mean = metrics.mean([b for _, b in scored])
    below = sum(r["ours"]["ndcg"] < r["fts5"]["ndcg"] - 1e-9 for r in rows)
    return {"set": name, "kind": "ranked", "queries": len(queries), "ours": ours_mean,
            "fts5": fts_mean, "below": below,
            "ratio": (ours_mean["nDCG@10"] / fts_mean["nDCG@10"]
                      if fts_mean["nDCG@10"] else float("inf")),
            "rows": rows}


def evaluate_empty(name: str, queries: list[EvalQuery], ours: Ranked,
                   fts: Ranked) -> dict[str, Any]:
    """A set whose right answer is nothing: the share answered with zero results. Nothing is
    judged relevant, so the precision of any answer given is 0."""
    rows = []
    for q, our_ranked, fts_ranked in zip(queries, ours, fts, strict=True):
        row = _row(q)
        row["note"] = q.note
        row["ours"], row["fts5"] = {"hits": our_ranked}, {"hits": fts_ranked}
        rows.append(row)

    def means(ranked: Ranked) -> dict[str, float | None]:
        return {"empty": metrics.empty_share(ranked),
                "P@10": 0.0 if any(ranked) else None,
                "results": sum(len(r) for r in ranked) / (len(ranked) or 1)}

    return {"set": name, "kind": "empty", "queries": len(queries), "ours": means(ours),
            "fts5": means(fts), "below": 0, "ratio": None, "rows": rows}


def run_sets(index_dir: Path, snippets: list[dict[str, Any]], sets: dict[str, list[EvalQuery]],
             before_ours: Any = None) -> list[dict[str, Any]]:
    """Every set asked of FTS5 over `snippets`, then (after `before_ours()`, waiting for the
    index build) of our index; scored."""
    fts = Fts5Baseline(snippets)
    fts_answers = {name: run_fts(fts, queries)[0] for name, queries in sets.items()}
    fts.close()
    if before_ours is not None:
        before_ours()
    ours_answers, seconds = run_ours(index_dir, list(sets.values()))
    log(f"{', '.join(sets)}: {sum(map(len, sets.values()))} queries "
        f"({seconds:.1f} s of our searching)")
    return [(evaluate_empty if name == "no-answer" else evaluate)(
                name, queries, ours, fts_answers[name])
            for (name, queries), ours in zip(sets.items(), ours_answers, strict=True)]


# -- main -----------------------------------------------------------------------------------

def print_seeds() -> None:
    snippets, _ = make_snippets(load(SEEDS_DIR))
    for s in snippets:
        print(f"== {s['id']}  paragraph {s['paragraph']}  section: {s['section']}  "
              f"conditions: {', '.join(s['conditions']) or '-'}")
        print(s["text"])
        print()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"first {QUICK_PAGES} corpus pages, {QUICK_QUERIES} corpus queries; "
                             "bench/README.md is not touched")
    parser.add_argument("--pages", type=int, default=None,
                        help="index only the first N corpus pages")
    parser.add_argument("--corpus-queries", type=int, default=None,
                        help=f"number of corpus queries (default {FULL_QUERIES})")
    parser.add_argument("--seeds-only", action="store_true",
                        help="skip the corpus and consumer sets")
    parser.add_argument("--rebuild", action="store_true", help="ignore bench/out/cache")
    parser.add_argument("--details", action="store_true",
                        help="print the top hits of each seed and lay query that loses to FTS5")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/README.md alone")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 when a target is not met")
    parser.add_argument("--print-seeds", action="store_true",
                        help="print every seed snippet with its id (for judging) and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.print_seeds:
        print_seeds()
        return 0

    started = time.monotonic()
    git = report.git_state(ROOT)  # what the indexes are built from: taken before the build
    pages_limit = args.pages if args.pages is not None else (QUICK_PAGES if args.quick else None)
    n_queries = args.corpus_queries or (QUICK_QUERIES if args.quick else FULL_QUERIES)
    with_corpus = not args.seeds_only
    if with_corpus and not CORPUS.is_file():
        raise SystemExit(f"corpus not found: {CORPUS} (or pass --seeds-only)")
    modules = _build_modules()
    pages_file, added = CORPUS, 0
    if with_corpus and pages_limit is not None:
        pages_file, added = partial_corpus(pages_limit)

    # The corpus index builds in a second process while this one prepares everything else.
    corpus_ws = None
    pending: Future | None = None
    executor = None
    build_started = time.monotonic()
    corpus_build = "cached"
    if with_corpus:
        corpus_ws = Workspace(f"corpus-{pages_limit or 'all'}",
                              cache_key(pages_file, None, modules), args.rebuild)
        if not corpus_ws.index_ready:
            log(f"building the corpus index ({pages_limit or 'all'} pages) in the background")
            executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            pending = executor.submit(build, SEEDS_DIR, corpus_ws.index, pages=pages_file)
            build_started = time.monotonic()

    results: list[dict[str, Any]] = []
    try:
        # Seeds, lay and no-answer sets: a small index, built here when its inputs changed.
        seeds_ws = Workspace("seeds", cache_key(None, None, modules), args.rebuild)
        seeds = load(SEEDS_DIR)
        if not seeds_ws.index_ready:
            build(SEEDS_DIR, seeds_ws.index)
        seed_snippets = seeds_ws.snippets(seeds)
        slugs = [c.slug for c in seeds.conditions]
        seed_sets = {"seeds": load_judged(JUDGED, seed_snippets, slugs),
                     "lay": load_lay(LAY, seed_snippets, slugs, JUDGED),
                     "no-answer": load_no_answer(NO_ANSWER)}
        results.extend(run_sets(seeds_ws.index, seed_snippets, seed_sets))
        texts = {s["id"]: s for s in seed_snippets}

        corpus_info = "no corpus (--seeds-only)"
        if with_corpus:
            assert corpus_ws is not None
            pages = load(SEEDS_DIR, pages_file)
            corpus_snippets = corpus_ws.snippets(pages)
            consumer, skipped = load_consumer(CONSUMER, CORPUS, pages.sources, corpus_snippets)
            corpus_sets = {"corpus": corpus_queries(pages.sources, corpus_snippets, n_queries,
                                                    CORPUS_SEED),
                           "consumer": consumer}
            if skipped:
                log(f"consumer: {skipped} questions left out (their answering pages are not "
                    "among the indexed ones)")

            def wait_for_build() -> None:
                nonlocal corpus_build
                if pending is not None:
                    pending.result()
                    corpus_build = f"built in {time.monotonic() - build_started:.0f} s"
                    log(f"corpus index {corpus_build}")

            results.extend(run_sets(corpus_ws.index, corpus_snippets, corpus_sets,
                                    wait_for_build))
            corpus_info = (f"{len(pages.sources):,} pages, {len(corpus_snippets):,} snippets"
                           + ("" if pages_limit is None else
                              f" (the first {pages_limit:,} and {added} the consumer set judges)"))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)

    runtime = time.monotonic() - started
    sizes = {r["set"]: r["queries"] for r in results}
    by_name = {r["set"]: r for r in results}
    seed_losses, detail = report.losses(by_name["seeds"], texts, args.details)
    _, lay_detail = report.losses(by_name["lay"], texts, args.details)
    lists = {"answered": report.answered(by_name["no-answer"], texts),
             "lay": report.lay_misses(by_name["lay"], texts), "seeds": seed_losses}
    tags = "\n\n".join(report.by_tag(r, {"corpus": "section type",
                                          "consumer": "answering section"}.get(r["set"], "tag"))
                        for r in results)
    print(report.table(results))
    print()
    for r in results:
        print(f"{r['set']}: {report.headline(r)}; target {report.TARGETS[r['set']][0]}: "
              f"{'met' if report.met(r) else 'NOT met'}")
    for title, key in (("no-answer questions our engine answered", "answered"),
                       ("lay questions without a grade-2 answer in our top 3", "lay"),
                       ("seed queries where ours is below FTS5", "seeds")):
        print(f"\n{title}: {len(lists[key])}")
        for item in lists[key]:
            print(item)
    for text in (detail, lay_detail):
        if text:
            print("\n" + text)
    print("\nper tag / section type:\n" + tags)
    print(f"\ncorpus: {corpus_info}; runtime {runtime:.0f} s")

    OUT.mkdir(parents=True, exist_ok=True)
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    (OUT / "eval-last.json").write_text(json.dumps({
        "date": date, "git": git, "machine": report.machine(), "runtime_seconds": runtime,
        "corpus": corpus_info, "results": results}, indent=1, default=str), encoding="utf-8")
    full = not args.quick and pages_limit is None and with_corpus and args.corpus_queries in (
        None, FULL_QUERIES)
    if full and not args.no_readme:
        report.write_readme(README, report.readme_section(results, lists, tags, {
            **sizes, "pages": corpus_info, "date": date, "git": git, "corpus_seed": CORPUS_SEED,
            "quick_pages": QUICK_PAGES, "quick_queries": QUICK_QUERIES,
            "machine": report.machine(), "runtime": runtime, "corpus_build": corpus_build}))
        log(f"results written to {README.relative_to(ROOT)}")
    return 1 if args.check and report.misses(results) else 0


if __name__ == "__main__":
    sys.exit(main())
