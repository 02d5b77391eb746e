"""The HTTP phase of `make bench`: ours and the two peer services (bench/peer_app.py over SQLite
FTS5 and over tantivy, the same paragraphs) under the same load generators and query mixes, in
short slices whose order rotates each round, so that a noisy moment does not land on one
engine or one scenario.

The cold mix comes from one pool of distinct queries (perf.py draws it from the same generator
as the in-process mix, then shuffles it, so every stretch of it has the same mix of kinds). A
cursor runs through the pool: every cold slice, whichever engine and load generator it is for,
takes the next queries and the cursor moves past every query it sent, so each engine gets its
own distinct queries and no query is sent twice. The first queries of the pool warm every
server up and are never part of a cold slice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import perf_http
import perf_load
from perf_common import cpu_seconds, log

ENGINES = ("ours", "fts5", "tantivy")
# (engine, scenario) measured in every round, engines interleaved; /healthz is ours only (the
# figure our repeated mix is held against).
UNITS = [(e, "cold") for e in ENGINES] + [(e, "repeated") for e in ENGINES] \
    + [("ours", "healthz")]
WARM_QUERIES = 200
MAX_RPS = 10_000  # a wrk cold slice is handed at most this many queries per second of it


class ColdFeed:
    """Distinct cold-mix paths, handed out in order; each goes to one slice and is never sent
    again (the cursor moves past everything a slice may have sent)."""

    def __init__(self, paths: list[str]):
        self.paths = paths
        self.cursor = 0

    def left(self) -> int:
        return len(self.paths) - self.cursor

    def take(self, count: int) -> list[str]:
        return self.paths[self.cursor:self.cursor + count]

    def used(self, count: int) -> None:
        self.cursor = min(len(self.paths), self.cursor + count)


def _slice(client: str, scenario: str, port: int, repeated: list[str], feed: ColdFeed,
           seconds: float, work: Path) -> dict[str, Any]:
    if scenario != "cold":
        paths = ["/healthz"] if scenario == "healthz" else repeated
        if client == "wrk":
            return perf_load.wrk_load(port, paths, seconds, work)
        return perf_load.python_load(port, perf_load.cycling(paths), seconds)
    if not feed.left():
        return {"client": client, "failed": "the cold pool ran out"}
    if client == "wrk":
        paths = feed.take(int(seconds * MAX_RPS) + 100)
        result = perf_load.wrk_load(port, paths, seconds, work)
        # Sent = answered + failed + at most one in flight per connection when wrk stopped;
        # if wrk failed, nothing is known, so none of them is used again.
        sent = (result["requests"] + result["errors"] + result["connections"]
                if "requests" in result else len(paths))
        feed.used(sent)
        result["exhausted"] = sent >= len(paths)
        return result
    next_path, handed = perf_load.once(feed.take(feed.left()))
    result = perf_load.python_load(port, next_path, seconds)
    feed.used(handed())
    result["exhausted"] = not feed.left()
    return result


def _servers(index_dir: Path, peers: dict[str, Path], logs: Path) -> dict[str, Any]:
    servers: dict[str, Any] = {"ours": perf_http.Server(index_dir, logs / "server.log")}
    for engine in ENGINES[1:]:
        servers[engine] = perf_http.PeerServer(engine, peers[engine],
                                               logs / f"peer-{engine}.log")
    return servers


def http_phase(index_dir: Path, peers: dict[str, Path], mixes: dict[str, Any], quick: bool,
               logs: Path, work: Path, note_load: Callable[[], None]) -> dict[str, Any]:
    """Start ours on `index_dir` and the peers on the FTS5 file and tantivy directory in
    `peers`, all at once; note worker memory after /healthz only, warm each up, then run every
    (engine, scenario) for one slice per round and load generator; memory again at the end."""
    rounds, seconds = (2, 1.0) if quick else (4, 2.0)
    servers = _servers(index_dir, peers, logs)
    log("[bench] HTTP: starting gunicorn (2 sync workers each) for ours on the full index and "
        "for the FTS5 and tantivy peers on the same paragraphs")
    clients = (["wrk"] if perf_load.wrk_path() else []) + ["python"]
    out: dict[str, Any] = {"rounds": rounds, "slice_seconds": seconds, "engines": {},
                           "clients": {}}
    try:
        for server in servers.values():
            server.start()
        repeated = [perf_http.path_for(q) for q in mixes["repeated"]]
        pool = [perf_http.path_for(q) for q in mixes["http_pool"]]
        warm_pool, feed = pool[:WARM_QUERIES], ColdFeed(pool[WARM_QUERIES:])
        for engine, server in servers.items():
            for _ in range(50):
                perf_http.get(server.port, "/healthz")
            info: dict[str, Any] = {"workers": server.worker_pids(),
                                    "memory": {"app_only": server.memory()}}
            if engine == "ours":
                info["readyz_status"] = perf_http.get(server.port, "/readyz")[0]
            # The same warm-up for all: the repeated set, then the warm-up queries once each.
            warmup = [
                perf_load.python_load(server.port, perf_load.cycling(repeated),
                                      1.0 if quick else 3.0),
                perf_load.python_load(server.port, perf_load.once(warm_pool)[0],
                                      2.0 if quick else 6.0)]
            info["warmup"] = [{k: v for k, v in w.items() if k != "latency_ns"} for w in warmup]
            info["memory"]["after_warmup"] = server.memory()
            out["engines"][engine] = info
        slices: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {
            c: {u: [] for u in UNITS} for c in clients}
        for number in range(rounds):
            shift = number * len(UNITS) // rounds
            order = UNITS[shift:] + UNITS[:shift]
            for client in clients:
                for engine, scenario in order:
                    note_load()
                    # The workers' CPU time for the slice: the other servers sit idle, so it is
                    # this scenario's cost per request, less sensitive to a busy machine than rps.
                    pids = servers[engine].worker_pids()
                    cpu = cpu_seconds(pids)
                    result = _slice(client, scenario, servers[engine].port, repeated, feed,
                                    seconds, work)
                    result["worker_cpu_seconds"] = cpu_seconds(pids) - cpu
                    slices[client][(engine, scenario)].append(result)
            log(f"[bench]   round {number + 1}/{rounds}: " + "; ".join(
                f"{c} " + ", ".join(f"{e} {s} {slices[c][(e, s)][-1].get('rps', 0):,.0f}"
                                    for e, s in UNITS) for c in clients) + " rps")
        for client in clients:
            out["clients"][client] = [
                {"engine": e, "scenario": s, **perf_load.combine(slices[client][(e, s)])}
                for e, s in UNITS]
        for engine, server in servers.items():
            out["engines"][engine]["memory"]["after_load"] = server.memory()
    finally:
        for server in servers.values():
            server.stop()
    cold_queries = mixes["http_pool"][WARM_QUERIES:]
    out["cold_pool"] = {"queries": len(cold_queries), "sent_or_skipped": feed.cursor,
                        "kinds": dict(Counter(q["kind"] for q in cold_queries[:feed.cursor]))}
    client = "wrk" if "wrk" in out["clients"] else "python"
    runs = {(r["engine"], r["scenario"]): r for r in out["clients"][client]}
    out["primary"] = {"client": client, "connections": runs[("ours", "healthz")].get("connections"),
                      "healthz_rps": runs[("ours", "healthz")]["rps"],
                      "engines": {e: {"repeated": runs[(e, "repeated")],
                                      "cold": runs[(e, "cold")]} for e in ENGINES}}
    return out
