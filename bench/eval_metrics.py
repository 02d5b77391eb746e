"""Ranking metrics for `make eval`: hit@1, hit@10, MRR@10 and nDCG@10 with graded relevance.

A ranked result is a list of hits; each hit is the list of snippet ids it stands for (its own id
first, then the near-duplicates an engine collapsed into it, `also_in`). A hit is as good as the
best judged snippet it stands for.

Judged snippets whose texts are identical (ignoring case, spacing and punctuation) form one
unit: a unit earns its gain once, at its best rank, and the ideal ranking counts it once. So an
engine that shows the same paragraph twice gains nothing for the second copy, and one that
collapses the copies into one hit loses nothing.

- nDCG@10: gain = grade (2 = answers, 1 = related), discount log2(rank + 1), divided by the DCG
  of the ideal ranking of the judged units.
- hit@1, hit@10, MRR@10: a hit counts when it carries the query's top judged grade (the best
  answer available: grade 2, or grade 1 for a query nothing answers directly).
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
    for rank, ids in enumerate(list(ranked)[:k], start=1):
        covered = {units.get(s, s) for s in ids if s in grades} - credited
        gain = max((unit_grade[u] for u in covered), default=0)
        credited |= covered
        gains.append(gain)
        dcg += gain / math.log2(rank + 1)
        if first is None and gain >= top:
            first = rank
    return Scored(ndcg=dcg / idcg, hit1=first == 1, hit10=first is not None,
                  rr=1.0 / first if first else 0.0, first=first, gains=gains)


def mean(scores: list[Scored]) -> dict[str, float]:
    n = len(scores) or 1
    return {
        "hit@1": sum(s.hit1 for s in scores) / n,
        "hit@10": sum(s.hit10 for s in scores) / n,
        "MRR@10": sum(s.rr for s in scores) / n,
        "nDCG@10": sum(s.ndcg for s in scores) / n,
    }
