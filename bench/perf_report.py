"""Turn raw results into the figures, the markdown tables and the README section."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from perf_common import summary_ms

BEGIN = "<!-- perf:results:begin -->"
END = "<!-- perf:results:end -->"
ENGINES = ("ours", "fts5", "tantivy")
LABEL = {"ours": "ours (Whoosh)", "fts5": "SQLite FTS5", "tantivy": "tantivy"}
FILTERED = ("condition", "source")


# -- figures ------------------------------------------------------------------------------------

def cold_figures(query_result: dict[str, Any], mix: list[dict[str, Any]]) -> dict[str, Any]:
    """Per engine: latency over all queries and over the filtered ones, errors, hit counts."""
    out: dict[str, Any] = {}
    for engine, rows in query_result["cold"].items():
        ok = [(q, r) for q, r in zip(mix, rows, strict=True) if "error" not in r]
        errors = [r["error"] for r in rows if "error" in r]
        figures = {
            "all": summary_ms([r["ns"] for _, r in ok]),
            "filtered": summary_ms([r["ns"] for q, r in ok if q["kind"] in FILTERED]),
            "unfiltered": summary_ms([r["ns"] for q, r in ok if q["kind"] not in FILTERED]),
            "by_kind": {kind: summary_ms([r["ns"] for q, r in ok if q["kind"] == kind])
                        for kind in sorted({q["kind"] for q in mix})},
            "errors": len(errors),
            "error_examples": sorted(set(errors))[:5],
            "with_hits": sum(1 for _, r in ok if r.get("total")),
            "queries": len(rows),
        }
        if engine == "ours":
            figures["relaxed_to_any"] = sum(1 for _, r in ok if r.get("match") == "any")
            figures["with_suggestion"] = sum(1 for _, r in ok if r.get("suggestion"))
        out[engine] = figures
    return out


def warm_figures(query_result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for engine, per_query in query_result["warm"].items():
        pooled = [n for entry in per_query for n in entry["ns"]]
        out[engine] = {
            "all": summary_ms(pooled),
            "worst_query_p50": max((summary_ms(e["ns"])["p50"] or 0.0) for e in per_query)
            if per_query else None,
            "errors": sum(e["errors"] for e in per_query),
            "reps": [len(e["ns"]) for e in per_query],
        }
    return out


# -- formatting ---------------------------------------------------------------------------------

def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value:.3f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 1000:.0f} ms" if value >= 0.01 else f"{value * 1000:.1f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:,.1f} s"


def mb(kb_or_bytes: float | None, unit: str = "kb") -> str:
    if kb_or_bytes is None:
        return "n/a"
    value = kb_or_bytes / 1024 if unit == "kb" else kb_or_bytes / 1024 / 1024
    return f"{value:,.1f} MB"


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def verdict(ok: bool | None, note: str = "") -> str:
    text = "n/a" if ok is None else ("PASS" if ok else "FAIL")
    return f"{text} {note}".strip()


def _errors_note(*counts: int) -> str:
    total = sum(counts)
    return f"({total} query errors)" if total else ""


# -- tables -------------------------------------------------------------------------------------

def main_table(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The full-corpus table: every figure beside its baseline, the ratio, target, verdict."""
    big = r["sizes"][-1]
    b, cold, warm = big["build"], big["cold"], big["warm"]
    http, mem, vis = r.get("http") or {}, (r.get("http") or {}).get("memory") or {}, \
        r.get("visibility") or {}
    rows: list[list[str]] = []
    checks: list[dict[str, Any]] = []

    def add(number: str, figure: str, ours: str, baseline: str, rat: str, reference: str,
            target: str, result: str) -> None:
        rows.append([number, figure, ours, baseline, rat, reference, target, result])

    def check(name: str, value: Any, target: str, ok: bool | None) -> str:
        checks.append({"figure": name, "value": value, "target": target, "pass": ok})
        return verdict(ok)

    build_ratio = ratio(b["ours"]["seconds"], b["fts5"]["seconds"])
    add("1", "build wall time: ours = whole `build()` (read, chunk, tag, grade, write); "
        "baselines = insert the same snippets + commit",
        secs(b["ours"]["seconds"]), f"FTS5 {secs(b['fts5']['seconds'])}", times(build_ratio),
        secs(b["tantivy"]["seconds"]), "≤ 15×",
        check("build time vs FTS5", build_ratio, "<= 15", None if build_ratio is None
              else build_ratio <= 15))
    rest = b["ours"].get("rest_seconds")
    add("1", "build without snippet making (ours minus `load` and `make_snippets` "
        f"= {secs(b['ours'].get('make_snippets_seconds'))} + "
        f"{secs(b['ours'].get('load_seconds'))})",
        secs(rest), f"FTS5 {secs(b['fts5']['seconds'])}",
        times(ratio(rest, b["fts5"]["seconds"])), secs(b["tantivy"]["seconds"]), "—", "info")
    add("1", "index size on disk", mb(b["ours"]["size_bytes"], "b"),
        f"FTS5 {mb(b['fts5']['size_bytes'], 'b')}",
        times(ratio(b["ours"]["size_bytes"], b["fts5"]["size_bytes"])),
        mb(b["tantivy"]["size_bytes"], "b"), "—", "info")
    add("1", "build peak RSS (the building process)", mb(b["ours"]["peak_rss_kb"]),
        f"FTS5 {mb(b['fts5']['peak_rss_kb'])}",
        times(ratio(b["ours"]["peak_rss_kb"], b["fts5"]["peak_rss_kb"])),
        mb(b["tantivy"]["peak_rss_kb"]), "—", "info")
    note = _errors_note(cold["ours"]["errors"], cold["fts5"]["errors"])
    for label, key, limit in (("p50", "p50", 1.0), ("p95", "p95", 1.5), ("p99", "p99", None)):
        value = ratio(cold["ours"]["all"][key], cold["fts5"]["all"][key])
        result = "info" if limit is None else check(
            f"cold query {label} vs FTS5", value, f"<= {limit}",
            None if value is None else value <= limit)
        add("2", f"cold query {label} ({cold['ours']['all']['n']} distinct queries, "
            "each once)", ms(cold["ours"]["all"][key]),
            f"FTS5 {ms(cold['fts5']['all'][key])}", times(value),
            ms(cold["tantivy"]["all"][key]), "—" if limit is None else f"≤ {limit:.1f}×",
            f"{result} {note}".strip())
    value = ratio(cold["ours"]["filtered"]["p50"], cold["fts5"]["filtered"]["p50"])
    add("2", f"filtered cold query p50 (condition or source; "
        f"{cold['ours']['filtered']['n']} queries)", ms(cold["ours"]["filtered"]["p50"]),
        f"FTS5 {ms(cold['fts5']['filtered']['p50'])}", times(value),
        ms(cold["tantivy"]["filtered"]["p50"]), "≤ 1.0×",
        f"{check('filtered cold p50 vs FTS5', value, '<= 1.0', None if value is None else value <= 1.0)} {note}".strip())  # noqa: E501
    wp50 = warm["ours"]["all"]["p50"]
    add("2", f"repeated query, per call p50 (p95) ({len(warm['ours']['reps'])} queries × "
        f"{min(warm['ours']['reps'] or [0])}-{max(warm['ours']['reps'] or [0])} calls)",
        f"{ms(wp50)} ({ms(warm['ours']['all']['p95'])})",
        f"FTS5 {ms(warm['fts5']['all']['p50'])} ({ms(warm['fts5']['all']['p95'])})",
        times(ratio(wp50, warm["fts5"]["all"]["p50"])),
        f"{ms(warm['tantivy']['all']['p50'])} ({ms(warm['tantivy']['all']['p95'])})",
        "≤ 0.1 ms", check("repeated query in-process p50", wp50, "<= 0.1 ms",
                          None if wp50 is None else wp50 <= 0.1))
    primary = http.get("primary") or {}
    health = primary.get("healthz_rps")
    for scenario, limit in (("repeated", 0.8), ("cold", 0.4)):
        run = primary.get(scenario) or {}
        share = ratio(run.get("rps"), health)
        latency = run.get("latency_ms") or {}
        extra = f"errors {run.get('errors', 'n/a')}"
        if scenario == "cold" and run.get("wrapped"):
            extra += f", list wrapped {run['wrapped']}×"
        add("3", f"HTTP {scenario} mix, {primary.get('client', '?')} "
            f"{primary.get('connections', '?')} connections: rps (p50 / p99 latency)",
            f"{run.get('rps', 0):,.0f} rps ({ms(latency.get('p50'))} / {ms(latency.get('p99'))})"
            if run else "n/a",
            f"/healthz {health:,.0f} rps" if health else "n/a", pct(share), extra,
            f"≥ {limit:.0%} of /healthz",
            check(f"HTTP {scenario} rps vs /healthz", share, f">= {limit}",
                  None if share is None else share >= limit))
    rss = [w.get("VmRSS") for w in (mem.get("after_warmup") or {}).values()]
    rss_after = [w.get("VmRSS") for w in (mem.get("after_load") or {}).values()]
    app_only = [w.get("VmRSS") for w in (mem.get("app_only") or {}).values()]
    worst = max([v for v in rss + rss_after if v], default=None)
    add("4", "RSS per worker after warm-up (after the HTTP runs); baseline: the same worker "
        "before it opened the index",
        " / ".join(mb(v) for v in rss) + (f" ({' / '.join(mb(v) for v in rss_after)})"
                                          if rss_after else ""),
        "app only " + " / ".join(mb(v) for v in app_only) if app_only else "n/a",
        times(ratio(max(rss, default=None) if rss else None,
                    max(app_only, default=None) if app_only else None)),
        "—", "≤ 150 MB",
        check("RSS per worker", worst and worst / 1024, "<= 150 MB",
              None if worst is None else worst / 1024 <= 150))
    delay = vis.get("seconds")
    opened = big.get("opened_seconds", {}).get("ours")
    add("5", f"new generation visible on every worker after `build()` returns "
        f"({vis.get('stale_answers', 'n/a')} stale answers first)", secs(delay),
        f"in-process open {secs(opened)}", times(ratio(delay, opened)), "—", "≤ 1 s",
        check("new generation visible", delay, "<= 1 s",
              None if delay is None else delay <= 1.0))
    header = ["#", "figure", "ours", "baseline", "ours ÷ baseline", "tantivy (reference)",
              "target", "result"]
    return _markdown(header, rows), checks


def http_table(r: dict[str, Any]) -> str:
    http = r.get("http") or {}
    rows = []
    for client, runs in (http.get("clients") or {}).items():
        for run in runs:
            latency = run.get("latency_ms") or {}
            per_slice = run.get("rps_per_slice") or []
            spread = f"{min(per_slice):,.0f}-{max(per_slice):,.0f}" if per_slice else "n/a"
            rows.append([client, run["scenario"], f"{run.get('rps', 0):,.0f}", spread,
                         ms(latency.get("p50")), ms(latency.get("p95")), ms(latency.get("p99")),
                         f"{run.get('requests', 0):,}", str(run.get("errors", "n/a"))])
    return _markdown(["client", "scenario", "rps", "rps range over slices", "p50", "p95", "p99",
                      "requests", "errors"], rows)


def growth_table(r: dict[str, Any]) -> str:
    sizes = r["sizes"]
    header = ["figure", "engine"] + [f"{s['pages']:,} pages ({s['snippets']:,} snippets)"
                                     for s in sizes]
    if len(sizes) > 1:
        header.append(f"× ({sizes[-1]['pages']:,} ÷ {sizes[0]['pages']:,})")
    rows = []

    def line(figure: str, engine: str, values: list[float | None], fmt) -> None:
        row = [figure, LABEL[engine]] + [fmt(v) for v in values]
        if len(sizes) > 1:
            row.append(times(ratio(values[-1], values[0])))
        rows.append(row)

    for engine in ENGINES:
        line("build wall time", engine, [s["build"][engine]["seconds"] for s in sizes], secs)
    line("build without snippet making", "ours",
         [s["build"]["ours"].get("rest_seconds") for s in sizes], secs)
    for engine in ENGINES:
        line("index size", engine, [s["build"][engine]["size_bytes"] for s in sizes],
             lambda v: mb(v, "b"))
    for engine in ENGINES:
        line("build peak RSS", engine, [s["build"][engine]["peak_rss_kb"] for s in sizes], mb)
    for key in ("p50", "p95", "p99"):
        for engine in ENGINES:
            line(f"cold query {key}", engine, [s["cold"][engine]["all"][key] for s in sizes], ms)
    for engine in ENGINES:
        line("filtered cold p50", engine, [s["cold"][engine]["filtered"]["p50"] for s in sizes],
             ms)
    for engine in ENGINES:
        line("repeated query p50", engine, [s["warm"][engine]["all"]["p50"] for s in sizes], ms)
    for engine in ENGINES:
        line("open the index", engine, [s.get("opened_seconds", {}).get(engine)
                                        for s in sizes], secs)
    ratios = [["cold p50 ours ÷ FTS5", "—"]
              + [times(ratio(s["cold"]["ours"]["all"]["p50"], s["cold"]["fts5"]["all"]["p50"]))
                 for s in sizes]]
    ratios += [["cold p95 ours ÷ FTS5", "—"]
               + [times(ratio(s["cold"]["ours"]["all"]["p95"], s["cold"]["fts5"]["all"]["p95"]))
                  for s in sizes]]
    ratios += [["build ours ÷ FTS5", "—"]
               + [times(ratio(s["build"]["ours"]["seconds"], s["build"]["fts5"]["seconds"]))
                  for s in sizes]]
    if len(sizes) > 1:
        ratios = [row + [""] for row in ratios]
    return _markdown(header, rows + ratios)


def kinds_table(r: dict[str, Any]) -> str:
    big = r["sizes"][-1]
    kinds = sorted(big["cold"]["ours"]["by_kind"])
    rows = []
    for kind in kinds:
        row = [kind, str(big["cold"]["ours"]["by_kind"][kind]["n"])]
        for engine in ENGINES:
            fig = big["cold"][engine]["by_kind"].get(kind) or {}
            row.append(f"{ms(fig.get('p50'))} / {ms(fig.get('p95'))}")
        row.append(times(ratio(big["cold"]["ours"]["by_kind"][kind]["p50"],
                               (big["cold"]["fts5"]["by_kind"].get(kind) or {}).get("p50"))))
        rows.append(row)
    return _markdown(["query kind", "queries"] + [f"{LABEL[e]} p50 / p95" for e in ENGINES]
                     + ["p50 ours ÷ FTS5"], rows)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def notes(r: dict[str, Any]) -> str:
    big = r["sizes"][-1]
    cold = big["cold"]
    parts = []
    for engine in ENGINES:
        c = cold[engine]
        text = (f"{LABEL[engine]}: {c['with_hits']}/{c['queries']} queries found something, "
                f"{c['errors']} errors")
        if engine == "ours":
            text += (f", {c['relaxed_to_any']} relaxed to any-word, {c['with_suggestion']} "
                     "with a spelling suggestion")
        if c["error_examples"]:
            text += " (e.g. " + "; ".join(f"`{e}`" for e in c["error_examples"][:2]) + ")"
        parts.append(f"- {text}.")
    vis = r.get("visibility") or {}
    if vis:
        opened = vis.get("worker_opened_seconds") or {}
        parts.append(
            f"- New generation: {vis.get('polls', 0)} polls of /readyz on fresh connections "
            f"from 4 threads; first answer {secs(vis.get('first_answer_seconds'))} after "
            "`build()` returned; workers opened the new files after "
            + (", ".join(secs(v) for v in opened.values()) or "n/a") + ".")
    return "\n".join(parts)


def machine_line(r: dict[str, Any]) -> str:
    m = r["machine"]
    dirty = (", uncommitted changes in " + ", ".join(m["uncommitted"][:8])
             + (" …" if len(m["uncommitted"]) > 8 else "")) if m["uncommitted"] else ""
    end = r.get("code_at_end") or {}
    if end and (end.get("commit") != m["commit"] or end.get("uncommitted") != m["uncommitted"]):
        dirty += (f" (the working tree changed during the run: at the end {end.get('commit')}"
                  + (", uncommitted " + ", ".join(end["uncommitted"][:8])
                     if end.get("uncommitted") else "") + ")")
    load = r.get("loadavg") or {}
    return (f"{m['date']} · {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
            f"{m['ram_gb']} GB RAM · Linux {m['kernel']} · Python {m['python']} · "
            f"code at {m['commit']}{dirty} · run took {secs(r.get('wall_seconds'))}"
            f" · load average {load.get('min', 0):.1f}-{load.get('max', 0):.1f} during the run")


def render(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    table, checks = main_table(r)
    big = r["sizes"][-1]
    text = "\n\n".join([
        f"Machine: {machine_line(r)}",
        f"### Full corpus: {big['pages']:,} pages, {big['snippets']:,} snippets",
        table,
        "### HTTP (gunicorn, 2 sync workers, loopback)",
        http_table(r),
        "### Cold query latency by kind (full corpus)",
        kinds_table(r),
        "### Growth",
        growth_table(r),
        "### Notes from this run",
        notes(r),
    ])
    return text, checks


def update_readme(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = path.with_suffix(f".md.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
