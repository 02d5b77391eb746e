"""Targets and report of `make eval` (bench/eval.py): the results table, per-tag tables, the
lists of queries that miss, and the section written into bench/README.md.

A result (one per set) is a dict: set, kind ("ranked": judged snippets, or "empty": the right
answer is nothing), queries, ours / fts5 (metric means, bench/eval_metrics.mean), ratio
(nDCG@10 ours / FTS5), below (queries where ours scores below FTS5) and rows (per query).
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- eval:begin -->", "<!-- eval:end -->"
COLUMNS = ("hit@1", "hit@3", "hit@10", "MRR@10", "nDCG@10", "P@10", "R@10", "empty")
ORDER = ("seeds", "lay", "no-answer", "corpus", "consumer")

# Set -> (what the target is, whether a result meets it). Issue 7 set +10% nDCG@10 on the seed
# and corpus sets; issue 12 raised the corpus set to 1.4x, added the consumer set at 1.5x, the
# lay set at hit@3 >= 90% and the no-answer set at 100% answered with nothing, and kept every
# seed query at or above FTS5.
TARGETS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "seeds": ("nDCG@10 >= 1.10x FTS5, no query below FTS5",
              lambda r: r["ratio"] >= 1.10 and r["below"] == 0),
    "lay": ("hit@3 >= 0.90", lambda r: r["ours"]["hit@3"] >= 0.90 - 1e-9),
    "no-answer": ("100% empty", lambda r: r["ours"]["empty"] >= 1.0 - 1e-9),
    "corpus": ("nDCG@10 >= 1.40x FTS5", lambda r: r["ratio"] >= 1.40),
    "consumer": ("nDCG@10 >= 1.50x FTS5", lambda r: r["ratio"] >= 1.50),
}


def met(result: dict[str, Any]) -> bool:
    return TARGETS[result["set"]][1](result)


def misses(results: list[dict[str, Any]]) -> list[str]:
    return [f"{r['set']} ({TARGETS[r['set']][0]}: {headline(r)})"
            for r in results if not met(r)]


def headline(r: dict[str, Any]) -> str:
    """The number a set's target is about."""
    if r["set"] == "no-answer":
        return f"{r['ours']['empty']:.0%} empty"
    if r["set"] == "lay":
        return f"hit@3 {r['ours']['hit@3']:.3f}"
    text = f"ratio {r['ratio']:.2f}"
    if r["set"] == "seeds":
        text += f", {r['below']} below FTS5"
    return text


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _cells(r: dict[str, Any], engine: str) -> list[str]:
    means = r[engine]
    if r["kind"] == "empty":
        # Nothing is judged relevant: any result returned is a wrong one (precision 0).
        return ["-"] * 5 + [_fmt(means["P@10"]), "-", _fmt(means["empty"])]
    return [_fmt(means[name]) for name in COLUMNS]


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| set | queries | engine | " + " | ".join(COLUMNS)
             + " | nDCG ours/FTS5 | target |",
             "|---|---:|---|" + "---:|" * len(COLUMNS) + "---:|---|"]
    for r in results:
        target = TARGETS[r["set"]][0]
        ok = "met" if met(r) else "**not met**"
        ratio = "-" if r["kind"] == "empty" else f"{r['ratio']:.2f}"
        lines.append(f"| {r['set']} | {r['queries']} | ours | " + " | ".join(_cells(r, "ours"))
                     + f" | {ratio} | {target}: {ok} |")
        lines.append(f"| {r['set']} | {r['queries']} | FTS5 bm25 | "
                     + " | ".join(_cells(r, "fts5")) + " | | |")
    return "\n".join(lines)


def by_tag(result: dict[str, Any], label: str = "tag") -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in result["rows"]:
        for tag in row["tags"]:
            groups[tag].append(row)
    if result["kind"] == "empty":
        lines = [f"| {result['set']}: {label} | queries | empty ours | empty FTS5 |",
                 "|---|---:|---:|---:|"]
        for tag, rows in sorted(groups.items()):
            ours = sum(not r["ours"]["hits"] for r in rows) / len(rows)
            fts = sum(not r["fts5"]["hits"] for r in rows) / len(rows)
            lines.append(f"| {tag} | {len(rows)} | {_fmt(ours)} | {_fmt(fts)} |")
        return "\n".join(lines)
    lines = [f"| {result['set']}: {label} | queries | nDCG@10 ours | nDCG@10 FTS5 | "
             "R@10 ours | R@10 FTS5 | ours below FTS5 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for tag, rows in sorted(groups.items()):
        cells = [sum(r[e][m] for r in rows) / len(rows)
                 for m in ("ndcg", "recall") for e in ("ours", "fts5")]
        worse = sum(r["ours"]["ndcg"] < r["fts5"]["ndcg"] - 1e-9 for r in rows)
        lines.append(f"| {tag} | {len(rows)} | " + " | ".join(_fmt(c) for c in cells)
                     + f" | {worse} |")
    return "\n".join(lines)


def label(sid: str, texts: dict[str, dict[str, Any]], grades: dict[str, int]) -> str:
    snippet = texts.get(sid)
    words = " ".join(snippet["text"].split()[:8]) if snippet else "?"
    return f"{sid} [g{grades.get(sid, 0)}] {words}..."


def losses(result: dict[str, Any], texts: dict[str, dict[str, Any]],
           detail: bool) -> tuple[list[str], str]:
    """Queries where our nDCG@10 is below FTS5's: a markdown list, and a plain detail text."""
    items, details = [], []
    for row in result["rows"]:
        if row["ours"]["ndcg"] >= row["fts5"]["ndcg"] - 1e-9:
            continue
        filt = f" (conditions: {', '.join(row['conditions'])})" if row["conditions"] else ""
        items.append(f"- {row['id']} `{row['q']}`{filt}: ours {row['ours']['ndcg']:.3f}, "
                     f"FTS5 {row['fts5']['ndcg']:.3f}; best answer at rank "
                     f"{row['ours']['first'] or '-'} (ours) vs {row['fts5']['first'] or '-'} "
                     "(FTS5)")
        if detail:
            details.append(f"{row['id']} {row['q']!r}{filt}")
            for engine in ("ours", "fts5"):
                details.append(f"  {engine}: gains {row[engine]['gains']}")
                for rank, ids in enumerate(row[engine]["hits"][:5], start=1):
                    extra = f" (+{len(ids) - 1} collapsed)" if len(ids) > 1 else ""
                    details.append(f"    {rank}. {label(ids[0], texts, row['grades'])}{extra}")
    return items, "\n".join(details)


def answered(result: dict[str, Any], texts: dict[str, dict[str, Any]]) -> list[str]:
    """No-answer questions our engine answered with something: what it returned first."""
    return [f"- {row['id']} `{row['q']}`: {len(row['ours']['hits'])} result(s); first: "
            f"{label(row['ours']['hits'][0][0], texts, {})}"
            for row in result["rows"] if row["ours"]["hits"]]


def lay_misses(result: dict[str, Any], texts: dict[str, dict[str, Any]]) -> list[str]:
    """Lay questions with no grade-2 snippet in our first three results."""
    items = []
    for row in result["rows"]:
        first = row["ours"]["first"]
        if first is not None and first <= 3:
            continue
        hits = row["ours"]["hits"]
        shown = label(hits[0][0], texts, row["grades"]) if hits else "nothing"
        items.append(f"- {row['id']} `{row['q']}`: best answer at rank {first or '-'}; "
                     f"first: {shown}")
    return items


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


def git_state(root: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "index", "seeds"],
                               cwd=root, check=True, capture_output=True,
                               text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" with uncommitted changes in index/ or seeds/" if dirty else "")


def write_readme(readme: Path, section: str) -> None:
    if readme.exists():
        current = readme.read_text(encoding="utf-8")
        start, end = current.find(BEGIN), current.find(END)
        if start != -1 and end > start:
            updated = current[:start] + section + current[end + len(END):]
        else:
            updated = current.rstrip("\n") + "\n\n" + section + "\n"
    else:
        updated = "# Benchmarks\n\n" + section + "\n"
    tmp = readme.with_suffix(f".md.tmp{os.getpid()}")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, readme)


def readme_section(results: list[dict[str, Any]], lists: dict[str, list[str]], tags: str,
                   info: dict[str, Any]) -> str:
    missed = misses(results)
    verdict = ("All targets met." if not missed else
               "Targets **not met**: " + "; ".join(missed) + ".")

    def listing(key: str) -> str:
        return "\n".join(lists.get(key) or ["None."])

    return f"""{BEGIN}
## Evaluation (`make eval`)

`make eval` (`bench/eval.py`) measures retrieval quality: our search (`index/search.py`, through
`IndexReader(...).generation().search(SearchQuery(...))`, reading only `hits`) against a plain
SQLite FTS5 baseline (porter stemmer, `bm25()`, over exactly the same snippet texts from
`index.build.make_snippets`; all words required, any word when that finds nothing; condition
filters through a side table). Five sets, all judged by reading the texts, never by looking at
what an engine returns:

- **seeds**: {info['seeds']} hand-judged queries over the five seed articles in
  `bench/judged_queries.yaml`, phrased as clinicians and patients type them (abbreviations,
  synonyms the text does not use, ICD-10-CM codes, condition filters). Each judgment is a snippet
  id plus a quote; grade 2 answers the query, grade 1 is related.
- **lay**: {info['lay']} questions on the seeds in patient words (`bench/judged_lay.yaml`, same
  format): "hurt", "stomach", "zap", "pain pills", "back surgery", accents, the "ﬁ" ligature,
  full-width letters, curly apostrophes, "noninvasive" / "non invasive" / "side-effects".
- **no-answer**: {info['no-answer']} questions the seeds do not cover
  (`bench/judged_no_answer.yaml`), clinical (ICD-10-CM display names among them) and lay, most
  sharing a generic word with the seeds ("side effects", "recovery", "without", "episode",
  "lower", "sleep", "safe", "technique"). The right answer is nothing: scored as the share
  answered with zero results; the ones our engine answered are listed below.
- **corpus**: {info['corpus']} queries drawn with `random.Random({info['corpus_seed']})` from
  `../shared/corpus/medquad-pages.jsonl`: a page and one of its section types become a templated
  query (`treatment of <title>`, `is <title> inherited`, `how common is <title>`, ...); that
  section of that page (and of pages with the same title) is grade 2; for a general query
  (`what is <title>`, the Information section) the rest of those pages is grade 1.
- **consumer**: {info['consumer']} long consumer questions on the corpus
  (`bench/judged_consumer.yaml`): several sentences, background before the question, typos, lay
  words. Each is judged by page and section type (grade 2 the section that answers, grade 1
  other useful sections, on every publisher's page for the condition); every snippet of a judged
  section gets its grade. Corpus and consumer sets search one index of {info['pages']}.
- **Metrics**: nDCG@10 with graded gains and a log2 discount against the ideal ranking of the
  judged snippets; hit@1, hit@3, hit@10 and MRR@10 count a result carrying the query's best
  grade. P@10 (precision) is the share of the results returned (up to 10) that are judged
  relevant; an empty answer has no precision and is left out of that mean, and `empty` is the
  share of questions answered with nothing, so precision cannot be bought by answering less.
  R@10 (recall) is judged units found in the top 10 over judged units (below 1 whenever more
  than 10 are judged). On the no-answer set nothing is judged relevant: any result is a wrong
  one (P@10 0 as soon as one question gets an answer), and only `empty` is scored. A hit
  counts as relevant when its id or any id in its `also_in` (collapsed near-duplicates) is
  judged; identical judged paragraphs count once.
- **Targets** (issues 7 and 12): seeds nDCG@10 at least 1.10x FTS5 with no query below FTS5;
  lay hit@3 at least 0.90; no-answer 100% empty; corpus nDCG@10 at least 1.40x FTS5; consumer
  at least 1.50x.

`make eval` runs everything and rewrites the results below. Built indexes and snippet lists are
kept in `bench/out/cache/` (gitignored) while their inputs (seeds, corpus file, the index
modules the build imports) are unchanged, so a change to the search alone needs no rebuild;
`--rebuild` ignores them. On the machine below a cold run took 3 to 4 minutes (the corpus index
build, run beside the FTS5 side, is most of it) and a run with cached indexes about a minute.
`--quick` indexes the first {info['quick_pages']:,} corpus pages plus the pages the consumer
set judges (a pages file in `bench/out/cache/`), asks {info['quick_queries']} corpus queries and
all consumer questions, and leaves this file alone; `--details` prints the top hits of each
seed and lay query that loses to FTS5; `--check` exits 1 when a target is missed. Every
judgment is validated at load (ids, quotes, pages, sections); a judgment that no longer fits
stops the run with the problems listed. Per-query results go to `bench/out/eval-last.json`.

### Results

{info['date']}, {info['git']}; {info['machine']}; this run took {info['runtime']:.0f} s
(corpus index {info['corpus_build']}).

{table(results)}

{verdict}

No-answer questions our engine answered (it should return nothing):

{listing('answered')}

Lay questions without a grade-2 answer in our top 3:

{listing('lay')}

Seed queries where ours is below FTS5 (nDCG@10):

{listing('seeds')}

Per tag (seeds, lay, no-answer), per section type (corpus) and per answering section type
(consumer):

{tags}
{END}"""
