"""The full-corpus table: every figure beside its baseline, the ratio, and for the targets of
the issue a PASS/FAIL; the other rows are informative."""

from __future__ import annotations

from typing import Any

from perf_format import errors_note, markdown, mb, ms, pct, ratio, secs, times, verdict

HEADER = ["#", "figure", "ours", "baseline", "ours ÷ baseline", "tantivy (reference)", "target",
          "result"]
BUILD_SECONDS = 45.0
COLD_P50, COLD_P95 = 1.0, 0.5  # at most these times FTS5's in-process cold latency
HTTP_COLD_VS_FTS5 = 0.8  # our HTTP cold-mix rps at least this share of the FTS5 peer's
REPEATED_VS_HEALTHZ = 0.8
PSS_MB = 150.0
VISIBLE_SECONDS = 1.0


def _worst(memory: dict[str, Any], key: str) -> float | None:
    values = [w.get(key) for w in (memory or {}).values() if w.get(key)]
    return max(values) if values else None


def _per_worker(memory: dict[str, Any], key: str) -> str:
    return " / ".join(mb(w.get(key)) for w in (memory or {}).values()) or "n/a"


def _rps(run: dict[str, Any] | None) -> str:
    if not run:
        return "n/a"
    latency = run.get("latency_ms") or {}
    return (f"{run.get('rps', 0):,.0f} rps ({ms(latency.get('p50'))} / "
            f"{ms(latency.get('p99'))})")


def _pool_note(run: dict[str, Any] | None) -> str:
    run = run or {}
    notes = [f"errors {run.get('errors', 'n/a')}"]
    if run.get("wrapped") and run.get("scenario") == "cold":  # the other mixes cycle
        notes.append(f"cold list wrapped {run['wrapped']}×: queries repeated")
    if run.get("failed_slices"):
        notes.append(f"{run['failed_slices']} slices failed")
    return ", ".join(notes)


def main_table(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    big = r["sizes"][-1]
    b, cold, warm = big["build"], big["cold"], big["warm"]
    http = r.get("http") or {}
    engines = http.get("engines") or {}
    vis = r.get("visibility") or {}
    rows: list[list[str]] = []
    checks: list[dict[str, Any]] = []

    def add(*cells: str) -> None:
        rows.append(list(cells))

    def check(name: str, value: Any, target: str, ok: bool | None) -> str:
        checks.append({"figure": name, "value": value, "target": target, "pass": ok})
        return verdict(ok)

    # 1: build
    seconds = b["ours"]["seconds"]
    add("1", "build wall time: ours = whole `build()` (read, chunk, tag, grade, write), its "
        "peak RSS in brackets; baselines = insert the same snippets + commit",
        f"{secs(seconds)} (peak {mb(b['ours']['peak_rss_kb'])})",
        f"FTS5 {secs(b['fts5']['seconds'])}", times(ratio(seconds, b["fts5"]["seconds"])),
        secs(b["tantivy"]["seconds"]), f"≤ {BUILD_SECONDS:.0f} s",
        check("full-corpus build wall time", seconds, f"<= {BUILD_SECONDS:.0f} s",
              None if seconds is None else seconds <= BUILD_SECONDS))
    add("1", "index size on disk", mb(b["ours"]["size_bytes"], "b"),
        f"FTS5 {mb(b['fts5']['size_bytes'], 'b')}",
        times(ratio(b["ours"]["size_bytes"], b["fts5"]["size_bytes"])),
        mb(b["tantivy"]["size_bytes"], "b"), "—", "info")
    add("1", "build peak RSS (ours: the building process plus its largest worker)",
        mb(b["ours"]["peak_rss_kb"]),
        f"FTS5 {mb(b['fts5']['peak_rss_kb'])}",
        times(ratio(b["ours"]["peak_rss_kb"], b["fts5"]["peak_rss_kb"])),
        mb(b["tantivy"]["peak_rss_kb"]), "—", "info")

    # 2: in-process queries
    note = errors_note(cold["ours"]["errors"], cold["fts5"]["errors"])
    for key, limit in (("p50", COLD_P50), ("p95", COLD_P95), ("p99", None)):
        value = ratio(cold["ours"]["all"][key], cold["fts5"]["all"][key])
        result = "info" if limit is None else check(
            f"cold query {key} vs FTS5", value, f"<= {limit}",
            None if value is None else value <= limit)
        add("2", f"cold query {key}, in-process ({cold['ours']['all']['n']} distinct queries, "
            "each once)", ms(cold["ours"]["all"][key]),
            f"FTS5 {ms(cold['fts5']['all'][key])}", times(value),
            ms(cold["tantivy"]["all"][key]), "—" if limit is None else f"≤ {limit:.1f}× FTS5",
            f"{result} {note}".strip())
    add("2", f"filtered cold query p50, in-process (condition or source; "
        f"{cold['ours']['filtered']['n']} queries)", ms(cold["ours"]["filtered"]["p50"]),
        f"FTS5 {ms(cold['fts5']['filtered']['p50'])}",
        times(ratio(cold["ours"]["filtered"]["p50"], cold["fts5"]["filtered"]["p50"])),
        ms(cold["tantivy"]["filtered"]["p50"]), "—", "info")
    wp50 = warm["ours"]["all"]["p50"]
    add("2", f"repeated query in-process, per call p50 (p95) ({len(warm['ours']['reps'])} "
        f"queries × {min(warm['ours']['reps'] or [0])}-{max(warm['ours']['reps'] or [0])} "
        "calls)", f"{ms(wp50)} ({ms(warm['ours']['all']['p95'])})",
        f"FTS5 {ms(warm['fts5']['all']['p50'])} ({ms(warm['fts5']['all']['p95'])})",
        times(ratio(wp50, warm["fts5"]["all"]["p50"])),
        f"{ms(warm['tantivy']['all']['p50'])} ({ms(warm['tantivy']['all']['p95'])})", "—",
        "info")

    # 3: HTTP
    primary = http.get("primary") or {}
    by_engine = primary.get("engines") or {}
    ours, fts5, tantivy = (by_engine.get(e) or {} for e in ("ours", "fts5", "tantivy"))
    health = primary.get("healthz_rps")
    load = f"{primary.get('client', '?')} {primary.get('connections', '?')} connections"
    share = ratio((ours.get("repeated") or {}).get("rps"), health)
    add("3", f"HTTP repeated mix, {load}: rps (p50 / p99 latency)", _rps(ours.get("repeated")),
        f"/healthz {health:,.0f} rps" if health else "n/a", pct(share),
        _pool_note(ours.get("repeated")), f"≥ {REPEATED_VS_HEALTHZ:.0%} of /healthz",
        check("HTTP repeated rps vs /healthz", share, f">= {REPEATED_VS_HEALTHZ}",
              None if share is None else share >= REPEATED_VS_HEALTHZ))
    add("3", f"HTTP repeated mix on the peers (no result cache), {load}",
        "—", f"FTS5 peer {_rps(fts5.get('repeated'))}", "—",
        f"tantivy peer {_rps(tantivy.get('repeated'))}", "—", "info")
    ours_cold = (ours.get("cold") or {}).get("rps")
    vs_fts5 = ratio(ours_cold, (fts5.get("cold") or {}).get("rps"))
    vs_tantivy = ratio(ours_cold, (tantivy.get("cold") or {}).get("rps"))
    add("3", f"HTTP cold mix (distinct queries, each sent once), {load}: rps (p50 / p99); "
        f"ours: {_pool_note(ours.get('cold'))}", _rps(ours.get("cold")),
        f"FTS5 peer {_rps(fts5.get('cold'))}", times(vs_fts5),
        f"tantivy peer {_rps(tantivy.get('cold'))}; ours ÷ tantivy {times(vs_tantivy)}",
        f"≥ {HTTP_COLD_VS_FTS5:.1f}× FTS5 peer",
        check("HTTP cold rps vs FTS5 peer", vs_fts5, f">= {HTTP_COLD_VS_FTS5}",
              None if vs_fts5 is None else vs_fts5 >= HTTP_COLD_VS_FTS5))
    add("3", "HTTP cold mix ÷ /healthz", pct(ratio(ours_cold, health)),
        f"/healthz {health:,.0f} rps" if health else "n/a", "—", "—", "—", "info")

    # 4: worker memory
    mem = (engines.get("ours") or {}).get("memory") or {}
    peer_mem = {e: (engines.get(e) or {}).get("memory") or {} for e in ("fts5", "tantivy")}
    worst = _worst(mem.get("after_load"), "Pss")
    add("4", "PSS per worker after the load runs (`smaps_rollup`: shared pages counted "
        "proportionally); baselines: the peers' workers",
        _per_worker(mem.get("after_load"), "Pss"),
        f"FTS5 peer {_per_worker(peer_mem['fts5'].get('after_load'), 'Pss')}",
        times(ratio(worst, _worst(peer_mem["fts5"].get("after_load"), "Pss"))),
        f"peer {_per_worker(peer_mem['tantivy'].get('after_load'), 'Pss')}",
        f"≤ {PSS_MB:.0f} MB",
        check("PSS per worker after load", worst and worst / 1024, f"<= {PSS_MB:.0f} MB",
              None if worst is None else worst / 1024 <= PSS_MB))
    rss_after = mem.get("after_load")
    add("4", "RSS per worker after warm-up (after the load runs); baseline: the same worker "
        "before it opened the index",
        _per_worker(mem.get("after_warmup"), "VmRSS")
        + (f" ({_per_worker(rss_after, 'VmRSS')})" if rss_after else ""),
        f"app only {_per_worker(mem.get('app_only'), 'VmRSS')}",
        times(ratio(_worst(mem.get("after_warmup"), "VmRSS"),
                    _worst(mem.get("app_only"), "VmRSS"))), "—", "—", "info")

    # 5: a new generation
    delay = vis.get("seconds")
    opened = big.get("opened_seconds", {}).get("ours")
    add("5", f"new generation visible on every worker after `build()` returns "
        f"({vis.get('stale_answers', 'n/a')} stale answers first)", secs(delay),
        f"in-process open {secs(opened)}", times(ratio(delay, opened)), "—",
        f"≤ {VISIBLE_SECONDS:.0f} s",
        check("new generation visible", delay, f"<= {VISIBLE_SECONDS:.0f} s",
              None if delay is None else delay <= VISIBLE_SECONDS))
    return markdown(HEADER, rows), checks
