"""Retrieval quality: our search against a plain SQLite FTS5 bm25 baseline (`make eval`).

Two query sets (see bench/eval_sets.py):
  seeds   bench/judged_queries.yaml, hand-judged queries over the five seed articles;
  corpus  queries derived reproducibly from ../shared/corpus/medquad-pages.jsonl (page title +
          section type), answered by that section of that page.
Each set is searched by our engine (index.build.build, then IndexReader(...).generation()
.search(SearchQuery(...)), the public API only) and by FTS5 over exactly the same snippets
(index.build.make_snippets on the same inputs). Metrics: hit@1, hit@10, MRR@10, nDCG@10
(bench/eval_metrics.py). Target (issue 7): nDCG@10 at least 10% above FTS5 on both sets, and
no seed query below FTS5.

The full run indexes all 5,490 corpus pages; --quick indexes the first 1,000 and asks 100
corpus queries. Built indexes and snippet lists are kept in bench/out/cache/ (gitignored),
keyed by a hash of their inputs: the seeds directory, the corpus file, and the source of every
index module the build imports (index/search.py is read at query time and is not part of the
key, so changing the search needs no rebuild). --rebuild ignores the cache.

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
import platform
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import eval_metrics as metrics
from eval_fts import Fts5Baseline
from eval_sets import EvalQuery, corpus_queries, load_judged

from index.build import build, make_snippets
from index.seeds import load

ROOT = Path(__file__).resolve().parents[1]

SEEDS_DIR = ROOT / "seeds"
CORPUS = ROOT.parent / "shared" / "corpus" / "medquad-pages.jsonl"
JUDGED = ROOT / "bench" / "judged_queries.yaml"
OUT = ROOT / "bench" / "out"
CACHE = OUT / "cache"
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- eval:begin -->", "<!-- eval:end -->"
CORPUS_SEED = 7  # random.Random seed for the corpus set (issue 7)
FULL_QUERIES, QUICK_QUERIES = 300, 100
QUICK_PAGES = 1000
TARGET = 1.10
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

def run_ours(index_dir: Path, queries: list[EvalQuery]) -> tuple[list[list[list[str]]], float]:
    from index.search import IndexReader, SearchQuery

    reader = IndexReader(index_dir)
    generation = reader.generation()
    ranked = []
    started = time.monotonic()
    for q in queries:
        result = generation.search(SearchQuery(text=q.text, conditions=q.conditions, limit=10))
        ranked.append([metrics.hit_ids(hit.record) for hit in result.hits])
    seconds = time.monotonic() - started
    reader.close()
    return ranked, seconds


def run_fts(fts: Fts5Baseline, queries: list[EvalQuery]) -> tuple[list[list[list[str]]], float]:
    started = time.monotonic()
    ranked = [[[sid] for sid in fts.search(q.text, q.conditions, 10)] for q in queries]
    return ranked, time.monotonic() - started


def evaluate(name: str, queries: list[EvalQuery], ours: list[list[list[str]]],
             fts: list[list[list[str]]]) -> dict[str, Any]:
    rows = []
    for q, our_ranked, fts_ranked in zip(queries, ours, fts, strict=True):
        a = metrics.score(our_ranked, q.grades, q.units)
        b = metrics.score(fts_ranked, q.grades, q.units)
        rows.append({
            "id": q.qid, "q": q.text, "conditions": list(q.conditions), "tags": list(q.tags),
            "meta": q.meta, "judged": len(q.grades),
            "ours": {"ndcg": round(a.ndcg, 4), "first": a.first, "gains": a.gains,
                     "hits": our_ranked},
            "fts5": {"ndcg": round(b.ndcg, 4), "first": b.first, "gains": b.gains,
                     "hits": fts_ranked},
            "_scores": (a, b),
        })
    ours_mean = metrics.mean([r["_scores"][0] for r in rows])
    fts_mean = metrics.mean([r["_scores"][1] for r in rows])
    for r in rows:
        del r["_scores"]
    return {"set": name, "queries": len(queries), "ours": ours_mean, "fts5": fts_mean,
            "ratio": (ours_mean["nDCG@10"] / fts_mean["nDCG@10"]
                      if fts_mean["nDCG@10"] else float("inf")),
            "rows": rows}


# -- reporting ------------------------------------------------------------------------------

def _fmt(value: float) -> str:
    return f"{value:.3f}"


def table(results: list[dict[str, Any]]) -> str:
    names = ("hit@1", "hit@10", "MRR@10", "nDCG@10")
    lines = ["| set | queries | engine | " + " | ".join(names) + " | nDCG ours/FTS5 | "
             "target (+10%) |",
             "|---|---:|---|" + "---:|" * len(names) + "---:|---|"]
    for r in results:
        ok = "met" if r["ratio"] >= TARGET else "**not met**"
        lines.append(f"| {r['set']} | {r['queries']} | ours | "
                     + " | ".join(_fmt(r["ours"][n]) for n in names)
                     + f" | {r['ratio']:.2f} | {ok} |")
        lines.append(f"| {r['set']} | {r['queries']} | FTS5 bm25 | "
                     + " | ".join(_fmt(r["fts5"][n]) for n in names) + " | | |")
    return "\n".join(lines)


def by_tag(result: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in result["rows"]:
        for tag in row["tags"]:
            groups[tag].append(row)
    lines = [f"| {result['set']}: tag | queries | nDCG@10 ours | nDCG@10 FTS5 | ours below FTS5 |",
             "|---|---:|---:|---:|---:|"]
    for tag, rows in sorted(groups.items()):
        ours = sum(r["ours"]["ndcg"] for r in rows) / len(rows)
        fts = sum(r["fts5"]["ndcg"] for r in rows) / len(rows)
        worse = sum(r["ours"]["ndcg"] < r["fts5"]["ndcg"] - 1e-9 for r in rows)
        lines.append(f"| {tag} | {len(rows)} | {_fmt(ours)} | {_fmt(fts)} | {worse} |")
    return "\n".join(lines)


def _label(sid: str, texts: dict[str, dict[str, Any]], grades: dict[str, int]) -> str:
    snippet = texts.get(sid)
    words = " ".join(snippet["text"].split()[:8]) if snippet else "?"
    grade = grades.get(sid, 0)
    return f"{sid} [g{grade}] {words}..."


def losses(result: dict[str, Any], queries: list[EvalQuery],
           texts: dict[str, dict[str, Any]], detail: bool) -> tuple[list[str], str]:
    """Queries where our nDCG@10 is below FTS5's: a markdown list, and a plain detail text."""
    by_id = {q.qid: q for q in queries}
    items, details = [], []
    for row in result["rows"]:
        if row["ours"]["ndcg"] >= row["fts5"]["ndcg"] - 1e-9:
            continue
        q = by_id[row["id"]]
        filt = f" (conditions: {', '.join(q.conditions)})" if q.conditions else ""
        items.append(f"- {row['id']} `{q.text}`{filt}: ours {row['ours']['ndcg']:.3f}, "
                     f"FTS5 {row['fts5']['ndcg']:.3f}; best answer at rank "
                     f"{row['ours']['first'] or '-'} (ours) vs {row['fts5']['first'] or '-'} "
                     "(FTS5)")
        if detail:
            details.append(f"{row['id']} {q.text!r}{filt}")
            for engine in ("ours", "fts5"):
                details.append(f"  {engine}: gains {row[engine]['gains']}")
                for rank, ids in enumerate(row[engine]["hits"][:5], start=1):
                    extra = f" (+{len(ids) - 1} collapsed)" if len(ids) > 1 else ""
                    details.append(f"    {rank}. {_label(ids[0], texts, q.grades)}{extra}")
    return items, "\n".join(details)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}")


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "index", "seeds"],
                               cwd=ROOT, check=True, capture_output=True,
                               text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" with uncommitted changes in index/ or seeds/" if dirty else "")


def readme_section(results: list[dict[str, Any]], seed_losses: list[str], tags: str,
                   info: dict[str, Any]) -> str:
    met = all(r["ratio"] >= TARGET for r in results) and not seed_losses
    verdict = ("Target met." if met else
               "Target **not met**: " + "; ".join(
                   [f"{r['set']} nDCG@10 ratio {r['ratio']:.2f} < {TARGET:.2f}"
                    for r in results if r["ratio"] < TARGET]
                   + ([f"{len(seed_losses)} seed queries below FTS5"] if seed_losses else []))
               + ".")
    loss_text = "\n".join(seed_losses) if seed_losses else "None."
    return f"""{BEGIN}
## Evaluation (`make eval`)

`make eval` (`bench/eval.py`) measures retrieval quality: our search (`index/search.py`, through
`IndexReader(...).generation().search(SearchQuery(...))`) against a plain SQLite FTS5 baseline
(porter stemmer, `bm25()`, over exactly the same snippet texts from `index.build.make_snippets`;
all words required, any word when that finds nothing; condition filters through a side table).

- **seeds**: {info['seed_queries']} hand-judged queries over the five seed articles in
  `bench/judged_queries.yaml`, phrased as clinicians and patients type them (abbreviations,
  synonyms the text does not use, ICD-10-CM codes, condition filters). Each judgment is a snippet
  id plus a quote; grade 2 answers the query, grade 1 is related.
- **corpus**: {info['corpus_queries']} queries drawn with `random.Random({CORPUS_SEED})` from
  `../shared/corpus/medquad-pages.jsonl`: a page and one of its section types become a templated
  query (`treatment of <title>`, `is <title> inherited`, `how common is <title>`, ...); that
  section of that page (and of pages with the same title) is grade 2; for a general query
  (`what is <title>`, the Information section) the rest of those pages is grade 1. Both engines
  index {info['pages']}.
- **Metrics**: nDCG@10 with graded gains and a log2 discount against the ideal ranking of the
  judged snippets; hit@1, hit@10 and MRR@10 count a result carrying the query's best grade. A
  hit counts as relevant when its id or any id in its `also_in` (collapsed near-duplicates) is
  judged, so a collapsed boilerplate paragraph ("inherited in an autosomal recessive pattern")
  counts even when the hit shown cites another page; identical judged paragraphs count once.
- **Target** (issue 7): nDCG@10 at least 10% above FTS5 on both sets, no seed query below FTS5.

`make eval` runs everything and rewrites the results below. Built indexes and snippet lists are
kept in `bench/out/cache/` (gitignored) while their inputs (seeds, corpus file, the index
modules the build imports) are unchanged, so a change to the search alone needs no rebuild;
`--rebuild` ignores them. On the machine below a cold run took 3 to 4 minutes (the corpus index
build, run beside the FTS5 side, is most of it) and a run with cached indexes under a minute.
`--quick` uses the first {QUICK_PAGES:,} corpus pages and {QUICK_QUERIES} corpus queries and
leaves this file alone; `--details` prints the top hits of each seed query that loses to FTS5;
`--check` exits 1 when the target is missed. Per-query results go to
`bench/out/eval-last.json`.

### Results

{info['date']}, {info['git']}; {info['machine']}; this run took {info['runtime']:.0f} s
(corpus index {info['corpus_build']}).

{table(results)}

{verdict}

Seed queries where ours is below FTS5 (nDCG@10):

{loss_text}

Seed set by tag, and corpus set by section type (nDCG@10):

{tags}
{END}"""


def write_readme(section: str) -> None:
    if README.exists():
        current = README.read_text(encoding="utf-8")
        start, end = current.find(BEGIN), current.find(END)
        if start != -1 and end > start:
            updated = current[:start] + section + current[end + len(END):]
        else:
            updated = current.rstrip("\n") + "\n\n" + section + "\n"
    else:
        updated = "# Benchmarks\n\n" + section + "\n"
    tmp = README.with_suffix(f".md.tmp{os.getpid()}")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, README)


# -- main -----------------------------------------------------------------------------------

def print_seeds() -> None:
    snippets, _ = make_snippets(load(SEEDS_DIR))
    for s in snippets:
        print(f"== {s['id']}  paragraph {s['paragraph']}  section: {s['section']}  "
              f"conditions: {', '.join(s['conditions']) or '-'}")
        print(s["text"])
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"first {QUICK_PAGES} corpus pages, {QUICK_QUERIES} corpus queries; "
                             "bench/README.md is not touched")
    parser.add_argument("--pages", type=int, default=None,
                        help="index only the first N corpus pages")
    parser.add_argument("--corpus-queries", type=int, default=None,
                        help=f"number of corpus queries (default {FULL_QUERIES})")
    parser.add_argument("--seeds-only", action="store_true", help="skip the corpus set")
    parser.add_argument("--rebuild", action="store_true", help="ignore bench/out/cache")
    parser.add_argument("--details", action="store_true",
                        help="print the top hits of each seed query that loses to FTS5")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/README.md alone")
    parser.add_argument("--check", action="store_true",
                        help="exit with status 1 when the target is not met")
    parser.add_argument("--print-seeds", action="store_true",
                        help="print every seed snippet with its id (for judging) and exit")
    args = parser.parse_args(argv)
    if args.print_seeds:
        print_seeds()
        return 0

    started = time.monotonic()
    git = git_state()  # what the indexes are built from: taken before the build starts
    pages_limit = args.pages if args.pages is not None else (QUICK_PAGES if args.quick else None)
    n_queries = args.corpus_queries or (QUICK_QUERIES if args.quick else FULL_QUERIES)
    with_corpus = not args.seeds_only
    if with_corpus and not CORPUS.is_file():
        raise SystemExit(f"corpus not found: {CORPUS} (or pass --seeds-only)")
    modules = _build_modules()

    # The corpus index builds in a second process while this one prepares everything else.
    corpus_ws = None
    pending: Future | None = None
    executor = None
    build_started = time.monotonic()
    corpus_build = "cached"
    if with_corpus:
        corpus_ws = Workspace(f"corpus-{pages_limit or 'all'}",
                              cache_key(CORPUS, pages_limit, modules), args.rebuild)
        if not corpus_ws.index_ready:
            log(f"building the corpus index ({pages_limit or 'all'} pages) in the background")
            executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            pending = executor.submit(build, SEEDS_DIR, corpus_ws.index, pages=CORPUS,
                                      pages_limit=pages_limit)
            build_started = time.monotonic()

    results = []
    try:
        # Seeds: a small index, built here when its inputs changed.
        seeds_ws = Workspace("seeds", cache_key(None, None, modules), args.rebuild)
        seeds = load(SEEDS_DIR)
        if not seeds_ws.index_ready:
            build(SEEDS_DIR, seeds_ws.index)
        seed_snippets = seeds_ws.snippets(seeds)
        seed_queries = load_judged(JUDGED, seed_snippets, [c.slug for c in seeds.conditions])
        fts = Fts5Baseline(seed_snippets)
        fts_ranked, _ = run_fts(fts, seed_queries)
        fts.close()
        ours_ranked, _ = run_ours(seeds_ws.index, seed_queries)
        texts = {s["id"]: s for s in seed_snippets}
        seed_result = evaluate("seeds", seed_queries, ours_ranked, fts_ranked)
        results.append(seed_result)
        log(f"seeds: {len(seed_queries)} queries done ({time.monotonic() - started:.0f} s)")

        corpus_info = "no corpus (--seeds-only)"
        if with_corpus:
            assert corpus_ws is not None
            pages = load(SEEDS_DIR, CORPUS, pages_limit)
            corpus_snippets = corpus_ws.snippets(pages)
            queries = corpus_queries(pages.sources, corpus_snippets, n_queries, CORPUS_SEED)
            fts = Fts5Baseline(corpus_snippets)
            fts_ranked, fts_seconds = run_fts(fts, queries)
            fts.close()
            log(f"corpus: {len(queries)} queries, FTS5 done ({fts_seconds:.1f} s of searching)")
            if pending is not None:
                pending.result()
                corpus_build = f"built in {time.monotonic() - build_started:.0f} s"
                log(f"corpus index {corpus_build}")
            ours_ranked, ours_seconds = run_ours(corpus_ws.index, queries)
            log(f"corpus: ours done ({ours_seconds:.1f} s of searching)")
            results.append(evaluate("corpus", queries, ours_ranked, fts_ranked))
            corpus_info = (f"{len(pages.sources):,} pages, {len(corpus_snippets):,} snippets"
                           + ("" if pages_limit is None else f" (first {pages_limit:,} pages)"))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)

    runtime = time.monotonic() - started
    seed_losses, detail = losses(seed_result, seed_queries, texts, args.details)
    tags = "\n\n".join(by_tag(r) for r in results)
    print(table(results))
    print()
    for r in results:
        below = sum(row["ours"]["ndcg"] < row["fts5"]["ndcg"] - 1e-9 for row in r["rows"])
        print(f"{r['set']}: nDCG@10 ours/FTS5 = {r['ratio']:.2f} "
              f"({'meets' if r['ratio'] >= TARGET else 'misses'} the +10% target); "
              f"ours below FTS5 on {below} of {r['queries']} queries")
    print(f"\nseed queries where ours is below FTS5: {len(seed_losses)}")
    for item in seed_losses:
        print(item)
    if detail:
        print("\n" + detail)
    print("\nby tag (seeds) and by section type (corpus):\n" + tags)
    print(f"\ncorpus: {corpus_info}; runtime {runtime:.0f} s")

    OUT.mkdir(parents=True, exist_ok=True)
    date = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    (OUT / "eval-last.json").write_text(json.dumps({
        "date": date, "git": git, "machine": machine(), "runtime_seconds": runtime,
        "corpus": corpus_info, "results": results}, indent=1), encoding="utf-8")
    full = not args.quick and pages_limit is None and with_corpus and args.corpus_queries in (
        None, FULL_QUERIES)
    if full and not args.no_readme:
        write_readme(readme_section(results, seed_losses, tags, {
            "seed_queries": len(seed_queries), "corpus_queries": n_queries,
            "pages": corpus_info, "date": date, "git": git,
            "machine": machine(), "runtime": runtime, "corpus_build": corpus_build}))
        log(f"results written to {README.relative_to(ROOT)}")
    met = all(r["ratio"] >= TARGET for r in results) and not seed_losses
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
