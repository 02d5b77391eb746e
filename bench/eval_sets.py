"""The two query sets of `make eval`: judged seed queries, and queries derived from the corpus.

Seed set: bench/judged_queries.yaml, written and judged by hand (see the file's header).

Corpus set: pages of ../shared/corpus/medquad-pages.jsonl carry their section types as heading
lines ("Information", "Symptoms", "Treatment", ...). With a fixed random seed, (page, section
type) pairs are drawn, each type getting a share by the square root of how many pages have it,
one query per title; the query is a natural template for that type around the page title
("treatment of <title>", "is <title> inherited", ...). Judgments:
  grade 2  every snippet in that section of the page (and of any other page with the same title,
           e.g. the GARD and the GHR page on one condition);
  grade 1  for a general query ("what is <title>", "<title>", the Information section), every
           other snippet of those pages. A specific question ("is <title> inherited") is not
           answered by the rest of the page (its resource links, its symptom lists), so those
           snippets are not judged: a ranking padded with them would otherwise outscore one that
           puts the answers first and stops.
A snippet belongs to the section whose type heading last precedes it, so paragraphs under a
sub-heading ("Key Points", "Stage II", ...) still count for their section type.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from eval_metrics import text_unit

# Section type -> query templates (one is drawn per query). "Considerations" and "Support
# groups" are section types too, but no single natural question asks for them.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "Information": ("what is {t}", "{t}", "{t} overview"),
    "Symptoms": ("symptoms of {t}", "what are the signs and symptoms of {t}", "{t} symptoms"),
    "Treatment": ("treatment of {t}", "how is {t} treated", "{t} treatment options"),
    "Causes": ("what causes {t}", "causes of {t}"),
    "Frequency": ("how common is {t}", "how many people have {t}"),
    "Inheritance": ("is {t} inherited", "how is {t} inherited"),
    "Genetic changes": ("genes related to {t}", "what genetic changes cause {t}"),
    "Exams and tests": ("how is {t} diagnosed", "tests for {t}"),
    "Outlook": ("outlook for {t}", "prognosis of {t}"),
    "Susceptibility": ("who gets {t}", "risk factors for {t}"),
    "Prevention": ("how to prevent {t}", "prevention of {t}"),
    "Research": ("research on {t}", "clinical trials for {t}"),
    "Stages": ("stages of {t}",),
    "Complications": ("complications of {t}",),
}
SECTION_TYPES = frozenset(TEMPLATES) | {"Considerations", "Support groups"}
MAX_TITLE_WORDS = 8


@dataclass
class EvalQuery:
    qid: str
    text: str
    conditions: tuple[str, ...]
    grades: dict[str, int]  # judged snippet id -> 1 or 2
    units: dict[str, str]  # judged snippet id -> identical-text unit
    tags: tuple[str, ...] = ()
    note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _norm(text: str) -> str:
    return " ".join(text.split())


def load_judged(path: Path, snippets: Sequence[Mapping[str, Any]],
                known_conditions: Iterable[str]) -> list[EvalQuery]:
    """The judged seed queries; stops with every problem listed if a judgment no longer fits
    the seeds (an id gone, a quote not found in its snippet, an unknown condition)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    by_id = {s["id"]: s for s in snippets}
    slugs = set(known_conditions)
    problems: list[str] = []
    queries: list[EvalQuery] = []
    seen: set[str] = set()
    for entry in data["queries"]:
        qid = entry["id"]
        if qid in seen:
            problems.append(f"{qid}: duplicate query id")
        seen.add(qid)
        conditions = tuple(entry.get("conditions") or ())
        for slug in conditions:
            if slug not in slugs:
                problems.append(f"{qid}: unknown condition {slug!r}")
        grades: dict[str, int] = {}
        for judgment in entry["relevant"]:
            sid, grade, quote = judgment["id"], judgment["grade"], judgment.get("quote", "")
            if grade not in (1, 2):
                problems.append(f"{qid}: {sid}: grade must be 1 or 2")
            snippet = by_id.get(sid)
            if snippet is None:
                problems.append(f"{qid}: snippet {sid} no longer exists (seed text edited?)")
                continue
            if _norm(quote) not in _norm(snippet["text"]):
                problems.append(f"{qid}: {sid}: quote {quote!r} is not in the snippet")
            grades[sid] = max(grades.get(sid, 0), grade)
        if not grades:
            problems.append(f"{qid}: no judged snippet")
        queries.append(EvalQuery(
            qid=qid, text=entry["q"], conditions=conditions, grades=grades,
            units={sid: text_unit(by_id[sid]["text"]) for sid in grades if sid in by_id},
            tags=tuple(entry.get("tags") or ()), note=entry.get("note", "")))
    if problems:
        raise SystemExit(f"{path}: the judgments no longer fit the seeds; re-judge:\n  "
                         + "\n  ".join(problems))
    return queries


def section_headings(source_text: str) -> list[tuple[int, str]]:
    """(character offset, section type) of each section-type heading line of a page, in
    order; the page's first line (its title) is never one."""
    headings: list[tuple[int, str]] = []
    pos = 0
    first = True
    for raw in source_text.splitlines(keepends=True):
        line = raw.strip()
        if line:
            if not first and line in SECTION_TYPES:
                headings.append((pos, line))
            first = False
        pos += len(raw)
    return headings


def section_types(source_text: str, snippets: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Snippet id -> the section type whose heading last precedes the snippet in the page."""
    headings = section_headings(source_text)
    types = {}
    for snippet in snippets:
        current = None
        for offset, name in headings:
            if offset > snippet["char_start"]:
                break
            current = name
        if current is not None:
            types[snippet["id"]] = current
    return types


def _title_ok(title: str) -> bool:
    words = title.split()
    # Not the titles of guides ("Nutrition for Early Chronic Kidney Disease in Adults",
    # "What I need to know about ..."): a template around them is no question anyone asks.
    return (0 < len(words) <= MAX_TITLE_WORDS and not re.search(r'[:?;"]| - | for ', title)
            and not title.lower().startswith(("what ", "how ", "am i ", "i can ")))


def _quotas(sizes: dict[str, int], count: int) -> dict[str, int]:
    """`count` split over section types by the square root of how many pages have each type
    (largest remainder), so common types weigh more without drowning the rare ones."""
    weights = {t: math.sqrt(n) for t, n in sizes.items() if n}
    total = sum(weights.values()) or 1.0
    exact = {t: count * w / total for t, w in weights.items()}
    quotas = {t: int(v) for t, v in exact.items()}
    for t in sorted(exact, key=lambda t: (quotas[t] - exact[t], t))[:count - sum(quotas.values())]:
        quotas[t] += 1
    return quotas


def corpus_queries(sources: Sequence[Any], snippets: Sequence[Mapping[str, Any]], count: int,
                   seed: int) -> list[EvalQuery]:
    """`count` queries drawn reproducibly (random.Random(seed)) from the indexed pages: each
    section type gets a share (see _quotas) of pages that have it; one query per title."""
    by_source: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for snippet in snippets:
        by_source[snippet["source_id"]].append(snippet)
    pages = {}
    by_title: dict[str, list[str]] = defaultdict(list)
    candidates: dict[str, list[str]] = {t: [] for t in TEMPLATES}
    for source in sorted(sources, key=lambda s: s.id):
        page_snippets = by_source.get(source.id, [])
        types = section_types(source.text, page_snippets)
        pages[source.id] = (source, page_snippets, types)
        by_title[_norm(source.title).lower()].append(source.id)
        if _title_ok(_norm(source.title)):
            for section in sorted(set(types.values()) & set(TEMPLATES)):
                candidates[section].append(source.id)

    rng = random.Random(seed)
    for section in sorted(candidates):
        rng.shuffle(candidates[section])
    quotas = _quotas({t: len(c) for t, c in candidates.items()}, count)
    used_titles: set[str] = set()
    picks: list[tuple[str, str]] = []

    def next_page(section: str) -> str | None:
        queue = candidates[section]
        while queue:
            page_id = queue.pop(0)
            key = _norm(pages[page_id][0].title).lower()
            if key not in used_titles:
                used_titles.add(key)
                return page_id
        return None

    # Round-robin over the types until each has its quota, then fill any shortfall from
    # whichever types still have pages.
    for fill in (False, True):
        progress = True
        while len(picks) < count and progress:
            progress = False
            for section in sorted(candidates):
                if len(picks) >= count or (not fill and quotas.get(section, 0) <= 0):
                    continue
                page_id = next_page(section)
                if page_id is None:
                    quotas[section] = 0
                    continue
                quotas[section] = quotas.get(section, 0) - 1
                picks.append((page_id, section))
                progress = True

    queries: list[EvalQuery] = []
    for number, (page_id, section) in enumerate(picks, start=1):
        source = pages[page_id][0]
        title = _norm(source.title)
        key = title.lower()
        template = rng.choice(TEMPLATES[section])
        grades: dict[str, int] = {}
        units: dict[str, str] = {}
        for same_title in by_title[key]:
            _, page_snippets, page_types = pages[same_title]
            for snippet in page_snippets:
                if page_types.get(snippet["id"]) == section:
                    grades[snippet["id"]] = 2
                elif section == "Information":
                    grades[snippet["id"]] = 1
                else:
                    continue
                units[snippet["id"]] = text_unit(snippet["text"])
        queries.append(EvalQuery(
            qid=f"c{number:03d}", text=template.format(t=title), conditions=(),
            grades=grades, units=units, tags=(section,),
            meta={"page": page_id, "pages": by_title[key], "section": section,
                  "template": template,
                  "answers": sum(g == 2 for g in grades.values())}))
    return queries
