"""Turn raw results into the figures, the markdown tables and the README section."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from perf_common import summary_ms
from perf_format import markdown, mb, ms, ratio, secs, times
from perf_targets import main_table

BEGIN = "<!-- perf:results:begin -->"
END = "<!-- perf:results:end -->"
ENGINES = ("ours", "fts5", "tantivy")
LABEL = {"ours": "ours (Whoosh)", "fts5": "SQLite FTS5", "tantivy": "tantivy"}
HTTP_LABEL = {"ours": "ours", "fts5": "FTS5 peer", "tantivy": "tantivy peer"}
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


# -- tables -------------------------------------------------------------------------------------

def http_table(r: dict[str, Any]) -> str:
    http = r.get("http") or {}
    rows = []
    for client, runs in (http.get("clients") or {}).items():
        for run in runs:
            latency = run.get("latency_ms") or {}
            per_slice = run.get("rps_per_slice") or []
            spread = f"{min(per_slice):,.0f}-{max(per_slice):,.0f}" if per_slice else "n/a"
            errors = str(run.get("errors", "n/a"))
            if run.get("wrapped") and run["scenario"] == "cold":  # the other mixes cycle
                errors += f" (cold list wrapped {run['wrapped']}×: queries repeated)"
            if run.get("failed_slices"):
                errors += f" ({run['failed_slices']} slices failed)"
            rows.append([client, HTTP_LABEL.get(run.get("engine", "ours"), "?"),
                         run["scenario"], f"{run.get('rps', 0):,.0f}", spread,
                         ms(latency.get("p50")), ms(latency.get("p95")), ms(latency.get("p99")),
                         ms(run.get("worker_cpu_ms_per_request")),
                         f"{run.get('requests', 0):,}", errors])
    return markdown(["client", "service", "scenario", "rps", "rps range over slices", "p50",
                     "p95", "p99", "worker CPU per request", "requests", "errors"], rows)


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
    return markdown(header, rows + ratios)


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
    return markdown(["query kind", "queries"] + [f"{LABEL[e]} p50 / p95" for e in ENGINES]
                     + ["p50 ours ÷ FTS5"], rows)



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
    pool = (r.get("http") or {}).get("cold_pool") or {}
    if pool:
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(pool.get("kinds", {}).items()))
        parts.append(
            f"- HTTP cold pool: {pool.get('queries', 0):,} distinct queries after the warm-up "
            f"ones, {pool.get('sent_or_skipped', 0):,} of them used by cold slices (sent, or "
            f"perhaps in flight when a slice ended; never sent again): {kinds}.")
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
        "### HTTP (gunicorn, 2 sync workers per service, loopback)",
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
