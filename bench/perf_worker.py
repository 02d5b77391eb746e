"""One measurement in a fresh process (so peak memory and cold caches belong to it alone).

    python bench/perf_worker.py TASK ARGS.json RESULT.json

Tasks:
  build-ours      index.build.build() into an index directory; wall time, time spent in
                  load() and make_snippets() (timed by wrapping them, nothing else changed),
                  generation size, peak RSS; optionally saves the snippets it made (the
                  baselines index exactly those) and prints a line the moment build() returns.
  build-baseline  FTS5 or tantivy over saved snippets: insert everything and commit.
  query           the cold mix once and the repeated queries many times, through our
                  IndexReader(...).generation().search(SearchQuery(...)) and both baselines,
                  interleaved query by query so that noise hits all three alike.
  profile         cProfile of the cold mix through our search, and of a build.
"""

from __future__ import annotations

import cProfile
import io
import json
import pickle
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from perf_common import dir_size, proc_status, reset_peak_rss, write_json  # noqa: E402

KEEP_FIELDS = ("id", "source_id", "text", "title", "section", "conditions")


def build_ours(args: dict[str, Any]) -> dict[str, Any]:
    from index import build as index_build

    phases: dict[str, float] = {}
    captured: dict[str, Any] = {}

    def timed(name: str, function):
        def wrapper(*a, **k):
            started = time.perf_counter()
            value = function(*a, **k)
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
            if name == "make_snippets":
                captured["snippets"] = value[0]
            return value
        return wrapper

    for name in ("load",):
        if callable(getattr(index_build, name, None)):
            setattr(index_build, name, timed(name, getattr(index_build, name)))
    peak_reset = reset_peak_rss()
    rss_before = proc_status().get("VmRSS")
    started = time.perf_counter()
    result = index_build.build(args["seeds"], args["index_dir"], pages=args.get("pages"),
                               pages_limit=args.get("limit"))
    seconds = time.perf_counter() - started
    returned = time.monotonic()
    if args.get("marker"):
        print(json.dumps({"returned": returned, "generation": result.generation.name}),
              flush=True)
        if args.get("wait_for_go"):
            # Stay idle while the parent measures, so this process takes no CPU from the
            # workers opening the new generation.
            sys.stdin.readline()
    peak = proc_status().get("VmHWM")
    # The build makes snippets in worker processes: its own figure counts them too.
    built_peak_mb = result.manifest.get("build_peak_rss_mb")
    if built_peak_mb is not None:
        peak = max(peak or 0, int(built_peak_mb * 1024))
    captured["snippets"] = getattr(result, "snippets", None) or captured.get("snippets")
    counts = result.manifest["counts"]
    out = {
        "seconds": seconds,
        "load_seconds": phases.get("load"),
        "make_snippets_seconds": phases.get("make_snippets"),
        "returned_monotonic": returned,
        "generation": result.generation.name,
        "version": result.manifest.get("version"),
        "sources": counts["sources"],
        "snippets": counts["snippets"],
        "per_condition": counts.get("per_condition", {}),
        "size_bytes": dir_size(result.generation),
        "peak_rss_kb": peak,
        "rss_before_kb": rss_before,
        "peak_reset": peak_reset,
    }
    if phases.get("load") is not None and phases.get("make_snippets") is not None:
        out["rest_seconds"] = seconds - phases["load"] - phases["make_snippets"]
    if args.get("snippets_out") and "snippets" in captured:
        keep = [{k: s.get(k) for k in KEEP_FIELDS} for s in captured["snippets"]]
        with open(args["snippets_out"], "wb") as handle:
            pickle.dump(keep, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return out


def build_baseline(args: dict[str, Any]) -> dict[str, Any]:
    import perf_baselines

    with open(args["snippets"], "rb") as handle:
        snippets = pickle.load(handle)
    path = Path(args["path"])
    builder = {"fts5": perf_baselines.fts5_build,
               "tantivy": perf_baselines.tantivy_build}[args["engine"]]
    peak_reset = reset_peak_rss()
    rss_before = proc_status().get("VmRSS")
    started = time.perf_counter()
    builder(snippets, path)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "snippets": len(snippets), "size_bytes": dir_size(path),
            "peak_rss_kb": proc_status().get("VmHWM"), "rss_before_kb": rss_before,
            "peak_reset": peak_reset}


class _Ours:
    name = "ours"

    def __init__(self, index_dir: str):
        from index.search import IndexReader, SearchQuery

        self._query = SearchQuery
        self.reader = IndexReader(index_dir)
        self.reader.generation()

    def search(self, text: str, conditions: list[str], sources: list[str]):
        result = self.reader.generation().search(self._query(
            text=text, conditions=tuple(conditions), sources=tuple(sources), limit=10))
        return result.total, result.hits, {"match": result.match,
                                           "suggestion": result.suggestion is not None}


class _Baseline:
    def __init__(self, engine):
        self.engine = engine
        self.name = engine.name

    def search(self, text: str, conditions: list[str], sources: list[str]):
        total, hits = self.engine.search(text, conditions, sources)
        return total, hits, {}


def _open_engines(args: dict[str, Any]) -> tuple[list[Any], dict[str, float]]:
    import perf_baselines

    engines: list[Any] = []
    opened: dict[str, float] = {}
    for name, opener in (("ours", lambda: _Ours(args["ours"])),
                         ("fts5", lambda: _Baseline(perf_baselines.Fts5(Path(args["fts5"])))),
                         ("tantivy",
                          lambda: _Baseline(perf_baselines.Tantivy(Path(args["tantivy"]))))):
        if not args.get(name):
            continue
        started = time.perf_counter()
        engines.append(opener())
        opened[name] = time.perf_counter() - started
    return engines, opened


def _call(engine, query: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    started = time.perf_counter_ns()
    try:
        total, hits, extra = engine.search(query["text"], query["conditions"], query["sources"])
        elapsed = time.perf_counter_ns() - started
        return elapsed, {"total": total, "hits": len(hits), **extra}
    except Exception as exc:  # counted and reported, never fatal to the run
        elapsed = time.perf_counter_ns() - started
        return elapsed, {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def query(args: dict[str, Any]) -> dict[str, Any]:
    import tantivy  # noqa: F401

    import index.search  # noqa: F401  (imports are not part of opening an index)

    mix = json.loads(Path(args["mix"]).read_text(encoding="utf-8"))
    repeated = json.loads(Path(args["repeated"]).read_text(encoding="utf-8"))
    rss_start = proc_status().get("VmRSS")
    engines, opened = _open_engines(args)
    names = [e.name for e in engines]
    cold: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for number, q in enumerate(mix):
        shift = number % len(engines)
        for engine in engines[shift:] + engines[:shift]:
            elapsed, info = _call(engine, q)
            cold[engine.name].append({"ns": elapsed, **info})
    rss_after_cold = proc_status().get("VmRSS")
    warm: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    budget = float(args.get("warm_seconds_per_query", 1.5))
    for q in repeated:
        first = {}
        for engine in engines:  # the first call warms; it is not counted
            first[engine.name] = _call(engine, q)[0]
        slowest = max(first.values()) / 1e9
        reps = int(max(args.get("min_reps", 30), min(args.get("max_reps", 300),
                                                     budget / max(slowest, 1e-6))))
        samples: dict[str, list[int]] = {n: [] for n in names}
        errors: dict[str, int] = dict.fromkeys(names, 0)
        for rep in range(reps):
            shift = rep % len(engines)
            for engine in engines[shift:] + engines[:shift]:
                elapsed, info = _call(engine, q)
                samples[engine.name].append(elapsed)
                errors[engine.name] += "error" in info
        for name in names:
            warm[name].append({"query": q, "ns": samples[name], "errors": errors[name]})
    return {"opened_seconds": opened, "cold": cold, "warm": warm,
            "rss_kb": {"start": rss_start, "after_cold": rss_after_cold,
                       "end": proc_status().get("VmRSS")}}


def profile(args: dict[str, Any]) -> dict[str, Any]:
    mix = json.loads(Path(args["mix"]).read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    profiler = cProfile.Profile()
    ours = _Ours(args["ours"])
    profiler.enable()
    for q in mix:
        _call(ours, q)
    profiler.disable()
    out["query"] = _top(profiler)
    if args.get("http_paths"):
        # The same kind of cold queries through the Flask app in-process (no gunicorn): what
        # a request costs beyond the search itself.
        from service import create_app

        app = create_app({"INDEX_DIR": args["ours"], "RATE_LIMIT": "off", "LOG_LEVEL": "WARNING"})
        client = app.test_client()
        client.get("/readyz")
        paths = json.loads(Path(args["http_paths"]).read_text(encoding="utf-8"))
        profiler = cProfile.Profile()
        profiler.enable()
        for path in paths:
            client.get(path)
        profiler.disable()
        out["http"] = _top(profiler)
        if args.get("http_repeated"):
            # The repeated mix: the search answers from its cache, so this is the cost of
            # the request, validation, presenting and serialising around it.
            repeated = json.loads(Path(args["http_repeated"]).read_text(encoding="utf-8"))
            for path in repeated:
                client.get(path)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(100):
                for path in repeated:
                    client.get(path)
            profiler.disable()
            out["http_repeated"] = _top(profiler)
    if args.get("build_index_dir"):
        from index import build as index_build

        profiler = cProfile.Profile()
        profiler.enable()
        index_build.build(args["seeds"], args["build_index_dir"], pages=args.get("pages"),
                          pages_limit=args.get("limit"))
        profiler.disable()
        out["build"] = _top(profiler)
    return out


def _top(profiler: cProfile.Profile, count: int = 30) -> dict[str, str]:
    texts = {}
    for key in ("tottime", "cumulative"):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(key).print_stats(count)
        texts[key] = buffer.getvalue()
    return texts


TASKS = {"build-ours": build_ours, "build-baseline": build_baseline, "query": query,
         "profile": profile}


def main() -> None:
    task, args_path, result_path = sys.argv[1:4]
    args = json.loads(Path(args_path).read_text(encoding="utf-8"))
    write_json(Path(result_path), TASKS[task](args))


if __name__ == "__main__":
    main()
