"""`make bench`: build, query and HTTP figures for the snippet service beside their baselines.

    .venv/bin/python bench/perf.py            full run: 500, 5,000 and all 5,490 pages
    .venv/bin/python bench/perf.py --quick    500 pages, short HTTP runs (development)
    .venv/bin/python bench/perf.py --profile  also cProfile the cold query path and a build

Prints the results table, writes raw results to bench/out/ and (full runs) the table into
bench/README.md. See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_http  # noqa: E402
import perf_http_phase  # noqa: E402
import perf_mix  # noqa: E402
import perf_report  # noqa: E402
from perf_common import (  # noqa: E402
    BENCH,
    CORPUS,
    OUT,
    ROOT,
    SEEDS,
    code_state,
    log,
    machine,
    read_json,
    write_json,
)

WORKER = BENCH / "perf_worker.py"
WORK = OUT / "work"
# Queries drawn for the HTTP phase (quick, full): enough that no cold slice runs short.
HTTP_POOL = {True: 20_000, False: 80_000}


class Run:
    def __init__(self, options: argparse.Namespace):
        self.options = options
        # Quick runs keep their results apart, so they never replace a full run's.
        self.suffix = "-quick" if options.quick else ""
        self.loads: list[float] = []
        self.steps = 0

    def note_load(self) -> None:
        self.loads.append(os.getloadavg()[0])

    def worker(self, task: str, args: dict[str, Any]) -> list[str]:
        self.steps += 1
        args_path = WORK / f"args-{self.steps:02d}-{task}.json"
        result_path = WORK / f"result-{self.steps:02d}-{task}.json"
        write_json(args_path, args)
        return [sys.executable, str(WORKER), task, str(args_path), str(result_path)]

    def run_worker(self, task: str, args: dict[str, Any]) -> dict[str, Any]:
        argv = self.worker(task, args)
        self.note_load()
        subprocess.run(argv, cwd=ROOT, check=True)
        self.note_load()
        return read_json(Path(argv[-1]))


def build_args(limit: int | None, index_dir: Path, snippets_out: Path | None,
               marker: bool = False, seeds_only: bool = False) -> dict[str, Any]:
    return {"seeds": str(SEEDS), "pages": None if seeds_only else str(CORPUS),
            "limit": limit, "index_dir": str(index_dir),
            "snippets_out": str(snippets_out) if snippets_out else None, "marker": marker,
            "wait_for_go": marker}


def measure_size(run: Run, size: int | None, index_dir: Path,
                 server: perf_http.Server | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build ours (under a running server when one is given: that is the visibility test),
    then both baselines over the same snippets; returns (size results, visibility)."""
    label = "all" if size is None else str(size)
    snippets_path = WORK / f"snippets-{label}.pkl"
    visibility: dict[str, Any] = {}
    log(f"[bench] ours: build {label} pages into {index_dir.name}"
        + (" while the server runs" if server else ""))
    args = build_args(size, index_dir, snippets_path, marker=server is not None)
    if server is None:
        ours = run.run_worker("build-ours", args)
    else:
        argv = run.worker("build-ours", args)
        run.note_load()
        visibility = perf_http.visibility(server, argv)
        run.note_load()
        ours = read_json(Path(argv[-1]))
        log(f"[bench] new generation visible after {visibility.get('seconds')} s")
    log(f"[bench]   {ours['seconds']:.1f}s, {ours['snippets']:,} snippets")
    out: dict[str, Any] = {"pages": ours["sources"], "snippets": ours["snippets"],
                           "build": {"ours": ours}}
    for engine, path in (("fts5", WORK / f"fts5-{label}.sqlite"),
                         ("tantivy", WORK / f"tantivy-{label}")):
        log(f"[bench] {engine}: build {label} pages")
        out["build"][engine] = run.run_worker("build-baseline", {
            "engine": engine, "snippets": str(snippets_path), "path": str(path)})
        out["build"][engine]["path"] = str(path)
        log(f"[bench]   {out['build'][engine]['seconds']:.1f}s")
    return out, visibility


def make_mixes(run: Run, first: dict[str, Any], label: str, pages_limit: int) -> dict[str, Any]:
    import pickle

    with open(WORK / f"snippets-{label}.pkl", "rb") as handle:
        snippets = pickle.load(handle)
    slugs = [s for s, n in first["build"]["ours"]["per_condition"].items() if n]
    pages = perf_mix.read_pages(CORPUS, pages_limit)
    maker = perf_mix.MixMaker(pages, first["pages"], snippets, slugs)
    quick = run.options.quick
    mix = maker.make(seed=20240606, count=100 if quick else 300)
    repeated = perf_mix.repeated_set(mix)
    taken = {perf_mix.key_of(q) for q in mix}
    # The HTTP pool: warm-up queries, then the cold mix of every engine and load generator
    # (perf_http_phase.py). Shuffled, because the generator runs short of new title queries
    # before the others, so that every stretch of the pool has the same mix of kinds.
    pool = maker.make(seed=20240607, count=HTTP_POOL[quick], exclude=taken)
    random.Random(20240608).shuffle(pool)
    mixes = {"mix": mix, "repeated": repeated, "http_pool": pool, "slugs": slugs}
    for name in ("mix", "repeated"):
        write_json(WORK / f"{name}.json", mixes[name])
    write_json(OUT / f"query-mix{run.suffix}.json", mixes)
    log(f"[bench] query mix: {len(mix)} distinct queries, {len(repeated)} repeated, "
        f"{len(pool)} more for HTTP; conditions used: {', '.join(slugs)}")
    return mixes


def query_size(run: Run, size: dict[str, Any], index_dir: Path,
               mixes: dict[str, Any]) -> None:
    log(f"[bench] queries at {size['pages']:,} pages: cold mix once, repeated set warm")
    result = run.run_worker("query", {
        "ours": str(index_dir), "fts5": size["build"]["fts5"]["path"],
        "tantivy": size["build"]["tantivy"]["path"], "mix": str(WORK / "mix.json"),
        "repeated": str(WORK / "repeated.json"),
        "warm_seconds_per_query": 0.5 if run.options.quick else 1.2,
        "min_reps": 20 if run.options.quick else 30, "max_reps": 300})
    size["cold"] = perf_report.cold_figures(result, mixes["mix"])
    size["warm"] = perf_report.warm_figures(result)
    size["opened_seconds"] = result["opened_seconds"]
    size["query_rss_kb"] = result["rss_kb"]
    write_json(OUT / f"raw-queries-{size['pages']}{run.suffix}.json", result)
    c = size["cold"]
    log("[bench]   cold p50 " + ", ".join(f"{e} {c[e]['all']['p50']}" for e in c)
        + " ms; errors " + ", ".join(f"{e} {c[e]['errors']}" for e in c))


def profile_phase(run: Run, index_dir: Path, limit: int | None) -> None:
    log("[bench] profiling the cold query path (in-process and through the Flask app) and a "
        "build")
    pool = read_json(OUT / f"query-mix{run.suffix}.json")["http_pool"]
    write_json(WORK / "profile-paths.json", [perf_http.path_for(q) for q in pool[-300:]])
    write_json(WORK / "profile-repeated.json",
               [perf_http.path_for(q) for q in read_json(WORK / "repeated.json")])
    result = run.run_worker("profile", {
        "ours": str(index_dir), "mix": str(WORK / "mix.json"), "seeds": str(SEEDS),
        "pages": str(CORPUS), "limit": limit, "build_index_dir": str(WORK / "ix-profile"),
        "http_paths": str(WORK / "profile-paths.json"),
        "http_repeated": str(WORK / "profile-repeated.json")})
    lines = []
    for part, stats in result.items():
        for key, text in stats.items():
            lines.append(f"==== {part}, sorted by {key} ====\n{text}")
    (OUT / "profile.txt").write_text("\n".join(lines), encoding="utf-8")
    log(f"[bench]   wrote {OUT / 'profile.txt'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="500 pages only, short runs; does not touch bench/README.md")
    parser.add_argument("--profile", action="store_true",
                        help="also write cProfile top costs to bench/out/profile.txt")
    parser.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None,
                        help="write the table into bench/README.md (default: full runs only)")
    options = parser.parse_args()
    if not CORPUS.is_file():
        sys.exit(f"error: {CORPUS} not found: the corpus must sit in ../shared/corpus beside "
                 "the project root (see ../shared/corpus/README.md)")
    started = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    run = Run(options)
    results: dict[str, Any] = {"machine": machine(), "sizes": []}
    sizes: list[int | None] = [500] if options.quick else [500, 5000, None]
    main_dir = WORK / "ix-main"
    mixes: dict[str, Any] | None = None
    for number, size in enumerate(sizes):
        last = number == len(sizes) - 1
        index_dir = main_dir if number >= len(sizes) - 2 else WORK / f"ix-{size}"
        server = None
        if last:
            if len(sizes) == 1:
                log("[bench] ours: seeds-only build, so the 500-page build can replace it")
                run.run_worker("build-ours", build_args(None, main_dir, None, seeds_only=True))
            server = perf_http.Server(main_dir, OUT / "server.log")
            server.start()
        try:
            size_result, visibility = measure_size(run, size, index_dir, server)
        finally:
            if server is not None:
                server.stop()
        if visibility:
            results["visibility"] = visibility
        if mixes is None:
            mixes = make_mixes(run, size_result, "all" if size is None else str(size),
                               sizes[-1] or 10**9)
        query_size(run, size_result, index_dir, mixes)
        results["sizes"].append(size_result)
        write_json(OUT / f"perf-results{run.suffix}.json", results)
    assert mixes is not None
    peers = {engine: Path(results["sizes"][-1]["build"][engine]["path"])
             for engine in ("fts5", "tantivy")}
    results["http"] = perf_http_phase.http_phase(main_dir, peers, mixes, options.quick, OUT,
                                                 WORK, run.note_load)
    if options.profile:
        profile_phase(run, main_dir, 500)
    run.note_load()
    results["wall_seconds"] = time.monotonic() - started
    results["code_at_end"] = code_state()
    results["loadavg"] = {"min": min(run.loads), "max": max(run.loads), "samples": run.loads}
    text, checks = perf_report.render(results)
    results["checks"] = checks
    write_json(OUT / f"perf-results{run.suffix}.json", results)
    (OUT / f"perf-table{run.suffix}.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    write_readme = options.readme if options.readme is not None else not options.quick
    if write_readme:
        perf_report.update_readme(BENCH / "README.md", text)
        log(f"[bench] wrote the table into {BENCH / 'README.md'}")
    passed = sum(1 for c in checks if c["pass"])
    log(f"[bench] {passed}/{len(checks)} targets met; whole run "
        f"{results['wall_seconds']:.0f}s; raw results in {OUT / f'perf-results{run.suffix}.json'}")


if __name__ == "__main__":
    main()
