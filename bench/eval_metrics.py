"""Ranking metrics for `make eval`: hit@1, hit@3, hit@10, MRR@10 and nDCG@10 with graded
relevance, and precision and recall of the top 10.

A ranked result is a list of hits; each hit is the list of snippet ids it stands for (its own id
first, then the near-duplicates an engine collapsed into it, `also_in`). A hit is as good as the
best judged snippet it stands for.

Judged snippets whose texts are identical (ignoring case, spacing and punctuation) form one
unit: a unit earns its gain once, at its best rank, and the ideal ranking counts it once. So an
engine that shows the same paragraph twice gains nothing for the second copy, and one that
collapses the copies into one hit loses nothing.

- nDCG@10: gain = grade (2 = answers, 1 = related), discount log2(rank + 1), divided by the DCG
  of the ideal ranking of the judged units.
- hit@1, hit@3, hit@10, MRR@10: a hit counts when it carries the query's top judged grade (the
  best answer available: grade 2, or grade 1 for a query nothing answers directly).
- P@10 (precision): the share of the results returned (at most 10) that stand for a judged
  snippet, grade 1 or 2. An empty answer has no precision: it is left out of the mean, and the
  share of empty answers is reported beside it (`empty`), so an engine cannot raise its
  precision by answering less without it showing.
- R@10 (recall): judged units found in the top 10 / judged units. With more than 10 judged
  units (a long section, a general question) it cannot reach 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

K = 10


def text_unit(text: str) -> str:
    """Texts equal up to case, spacing and punctuation share a unit."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def hit_ids(hit: Mapping[str, Any]) -> list[str]:
    """The snippet ids one search hit stands for: its id, then any collapsed into it."""
    ids = [str(hit["id"])]
    for other in hit.get("also_in") or ():
        if isinstance(other, Mapping):
            if other.get("id") is not None:
                ids.append(str(other["id"]))
        else:
            ids.append(str(other))
    return ids


@dataclass
class Scored:
    ndcg: float
    hit1: bool
    hit10: bool
    rr: float
    first: int | None  # rank of the first hit with the top grade
    gains: list[int] = field(default_factory=list)
    precision: float | None = None  # None: nothing returned
    recall: float = 0.0

    @property
    def hit3(self) -> bool:
        return self.first is not None and self.first <= 3

    @property
    def empty(self) -> bool:
        return self.precision is None


def score(ranked: Iterable[Iterable[str]], grades: Mapping[str, int],
          units: Mapping[str, str], k: int = K) -> Scored:
    """Score one ranked result against the judgments `grades` (snippet id -> grade > 0);
    `units` maps a judged id to its unit (ids missing from it are units of their own)."""
    unit_grade: dict[str, int] = {}
    for sid, grade in grades.items():
        unit = units.get(sid, sid)
        unit_grade[unit] = max(unit_grade.get(unit, 0), grade)
    if not unit_grade:
        raise ValueError("a query needs at least one judged snippet")
    top = max(unit_grade.values())
    ideal = sorted(unit_grade.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    credited: set[str] = set()
    dcg = 0.0
    first = None
    gains = []
    relevant_hits = 0
    top_k = list(ranked)[:k]
    for rank, ids in enumerate(top_k, start=1):
        ids = list(ids)
        relevant_hits += any(s in grades for s in ids)
        covered = {units.get(s, s) for s in ids if s in grades} - credited
        gain = max((unit_grade[u] for u in covered), default=0)
        credited |= covered
        gains.append(gain)
        dcg += gain / math.log2(rank + 1)
        if first is None and gain >= top:
            first = rank
    return Scored(ndcg=dcg / idcg, hit1=first == 1, hit10=first is not None,
                  rr=1.0 / first if first else 0.0, first=first, gains=gains,
                  precision=relevant_hits / len(top_k) if top_k else None,
                  recall=len(credited) / len(unit_grade))


def mean(scores: list[Scored]) -> dict[str, float | None]:
    """Means over the queries; P@10 over the queries that returned something (None when none
    did)."""
    n = len(scores) or 1
    answered = [s.precision for s in scores if s.precision is not None]
    return {
        "hit@1": sum(s.hit1 for s in scores) / n,
        "hit@3": sum(s.hit3 for s in scores) / n,
        "hit@10": sum(s.hit10 for s in scores) / n,
        "MRR@10": sum(s.rr for s in scores) / n,
        "nDCG@10": sum(s.ndcg for s in scores) / n,
        "P@10": sum(answered) / len(answered) if answered else None,
        "R@10": sum(s.recall for s in scores) / n,
        "empty": sum(s.empty for s in scores) / n,
    }


def empty_share(ranked: list[list[list[str]]]) -> float:
    """For questions whose right answer is nothing: the share answered with zero results."""
    return sum(not r for r in ranked) / (len(ranked) or 1)
