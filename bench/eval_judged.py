"""The judged sets of issue 12 for `make eval`, loaded and validated (see each file's header).

  no-answer  bench/judged_no_answer.yaml: questions the five seed articles do not cover; the
             right answer is no result.
  lay        bench/judged_lay.yaml: lay wording on the seeds, in the format of
             bench/judged_queries.yaml (snippet id + quote per judgment).
  consumer   bench/judged_consumer.yaml: long consumer questions on the corpus, judged by page
             and section type; a judgment grades every snippet of that section of that page
             (the snippets eval_sets.section_types assigns to it).

Every loader checks every entry and stops with all the problems listed (an id gone, a quote
not in its snippet, a page or section the corpus does not have, a missing note or tag), as
eval_sets.load_judged does: a judgment that no longer fits its texts must be re-judged, not
silently dropped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from eval_metrics import text_unit
from eval_sets import EvalQuery, load_judged, section_headings, section_types

NO_ANSWER_TAGS = frozenset({"clinical", "patient", "icd", "shared"})


def _read(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("queries"), list):
        raise SystemExit(f"{path}: expected a mapping with a 'queries' list")
    return data["queries"]


def _stop(path: Path, what: str, problems: list[str]) -> None:
    if problems:
        raise SystemExit(f"{path}: {what}:\n  " + "\n  ".join(problems))


def _common(entry: Any, number: int, seen: set[str], problems: list[str]) -> str | None:
    """Checks every set shares: a mapping with a new id, a question and a note."""
    if not isinstance(entry, dict):
        problems.append(f"entry {number}: not a mapping")
        return None
    qid = str(entry.get("id") or f"entry {number}")
    if "id" not in entry:
        problems.append(f"{qid}: no id")
    if qid in seen:
        problems.append(f"{qid}: duplicate query id")
    seen.add(qid)
    if not str(entry.get("q") or "").strip():
        problems.append(f"{qid}: no question (q)")
    if not str(entry.get("note") or "").strip():
        problems.append(f"{qid}: no note saying why it is judged so")
    return qid


def load_no_answer(path: Path) -> list[EvalQuery]:
    """Questions whose right answer is no result (no judged snippets)."""
    problems: list[str] = []
    seen: set[str] = set()
    queries = []
    for number, entry in enumerate(_read(path), start=1):
        qid = _common(entry, number, seen, problems)
        if qid is None:
            continue
        tags = tuple(entry.get("tags") or ())
        unknown = sorted(set(tags) - NO_ANSWER_TAGS)
        if unknown:
            problems.append(f"{qid}: unknown tags {unknown} (known: {sorted(NO_ANSWER_TAGS)})")
        if ("clinical" in tags) == ("patient" in tags):
            problems.append(f"{qid}: tag it either 'clinical' or 'patient'")
        for key in ("relevant", "conditions"):
            if entry.get(key):
                problems.append(f"{qid}: a no-answer question has no {key}")
        queries.append(EvalQuery(qid=qid, text=str(entry.get("q") or ""), conditions=(),
                                 grades={}, units={}, tags=tags, note=entry.get("note", "")))
    _stop(path, "the no-answer set is malformed", problems)
    return queries


def load_lay(path: Path, snippets: Sequence[Mapping[str, Any]], known_conditions: Iterable[str],
             seed_set: Path) -> list[EvalQuery]:
    """The lay-wording set: bench/judged_queries.yaml's format and checks, plus a `lay` tag on
    every question and no question repeated from the seed set."""
    problems: list[str] = []
    taken = {" ".join(str(e.get("q", "")).lower().split()) for e in _read(seed_set)}
    seen: set[str] = set()
    for number, entry in enumerate(_read(path), start=1):
        qid = _common(entry, number, seen, problems)
        if qid is None:
            continue
        if "lay" not in (entry.get("tags") or ()):
            problems.append(f"{qid}: every lay question carries the 'lay' tag")
        if " ".join(str(entry.get("q", "")).lower().split()) in taken:
            problems.append(f"{qid}: {entry.get('q')!r} is already in {seed_set.name}")
    try:
        queries = load_judged(path, snippets, known_conditions)
    except SystemExit as stopped:
        raise SystemExit("\n  ".join([str(stopped), *problems])) from None
    _stop(path, "the lay set is malformed", problems)
    return queries


def judged_pages(path: Path) -> set[str]:
    """The page ids a consumer file judges (unvalidated: load_consumer checks them)."""
    return {str(j.get("page")) for entry in _read(path) if isinstance(entry, dict)
            for j in entry.get("relevant") or () if isinstance(j, dict)}


def corpus_sections(corpus: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """Page id -> (title, its section types), for every page of the corpus file (not only the
    indexed ones, so a --quick run still validates every judgment)."""
    pages = {}
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                page = json.loads(line)
                names = frozenset(name for _, name in section_headings(page["text"]))
                pages[page["id"]] = (page["title"], names)
    return pages


def load_consumer(path: Path, corpus: Path, sources: Sequence[Any],
                  snippets: Sequence[Mapping[str, Any]]) -> tuple[list[EvalQuery], int]:
    """The consumer questions, with every (page, section) judgment turned into snippet grades
    over the indexed pages. Returns the queries and how many were left out because none of
    their grade-2 pages is indexed (a --pages/--quick run indexes part of the corpus)."""
    pages = corpus_sections(corpus)
    indexed = {source.id: source for source in sources}
    by_source: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for snippet in snippets:
        if snippet["source_id"] in indexed:
            by_source[snippet["source_id"]].append(snippet)
    types: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    seen: set[str] = set()
    queries: list[EvalQuery] = []
    skipped = 0
    for number, entry in enumerate(_read(path), start=1):
        qid = _common(entry, number, seen, problems)
        if qid is None:
            continue
        judged = entry.get("relevant") or []
        if not any(isinstance(j, dict) and j.get("grade") == 2 for j in judged):
            problems.append(f"{qid}: no grade-2 section (the one that answers)")
        grades: dict[str, int] = {}
        units: dict[str, str] = {}
        pairs: set[tuple[str, str]] = set()
        answered = False
        for judgment in judged:
            page_id, section = judgment.get("page"), judgment.get("section")
            grade = judgment.get("grade")
            if grade not in (1, 2):
                problems.append(f"{qid}: {page_id} {section}: grade must be 1 or 2")
            if (page_id, section) in pairs:
                problems.append(f"{qid}: {page_id} {section} judged twice")
            pairs.add((page_id, section))
            if page_id not in pages:
                problems.append(f"{qid}: page {page_id!r} is not in {corpus.name}")
                continue
            title, names = pages[page_id]
            if section not in names:
                problems.append(f"{qid}: page {page_id} ({title}) has no {section!r} section "
                                f"(it has {', '.join(sorted(names))})")
                continue
            if page_id not in indexed:
                continue
            if page_id not in types:
                types[page_id] = section_types(indexed[page_id].text, by_source[page_id])
            found = [s for s in by_source[page_id] if types[page_id].get(s["id"]) == section]
            if not found:
                problems.append(f"{qid}: {page_id} {section}: no snippet of the index is in it")
            for snippet in found:
                grades[snippet["id"]] = max(grades.get(snippet["id"], 0), grade or 0)
                units[snippet["id"]] = text_unit(snippet["text"])
            answered = answered or (grade == 2 and bool(found))
        if not answered:
            skipped += 1
            continue
        queries.append(EvalQuery(
            qid=qid, text=str(entry.get("q") or ""), conditions=(), grades=grades, units=units,
            tags=tuple(sorted({j.get("section") for j in judged if j.get("grade") == 2})),
            note=entry.get("note", ""),
            meta={"pages": sorted({j.get("page") for j in judged}),
                  "answers": sum(g == 2 for g in grades.values())}))
    _stop(path, "the judgments no longer fit the corpus; re-judge", problems)
    return queries, skipped
