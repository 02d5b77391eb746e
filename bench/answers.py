"""Record what the search answers to a fixed set of queries, or compare it with a recording.

The engine can be rewritten underneath `Generation.search`; its answers must not change unless
a test says why. This makes the query set (deterministic, from the index's own snippets and the
seed files) and records, per query, the hits (id, score, highlighted spans), total, match and
suggestion. tests/test_search_answers.py compares the seed index with tests/data/; this script
also compares a larger index (the corpus) with a recording made before a change:

    .venv/bin/python bench/answers.py record --index DIR --out bench/out/answers.json
    .venv/bin/python bench/answers.py compare --index DIR --out bench/out/answers.json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from index.search import IndexReader, SearchQuery  # noqa: E402

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:] if rng.random() < 0.5 else \
        word[:i] + word[i + 1:]


def make_queries(gen, count: int, seed: int = 11) -> list[dict[str, Any]]:
    """`count` queries of every kind the API sees, drawn from the generation's own snippets."""
    rng = random.Random(seed)
    records = [gen.snippet(sid) for source in gen.sources.values()
               for sid in source["snippet_ids"]]
    slugs = sorted(c["slug"] for c in gen.conditions if c["snippet_count"])
    labels = sorted({t for c in gen.conditions for t in [c["label"], *c["terms"],
                                                         *c["abbreviations"]]})
    queries: list[dict[str, Any]] = []

    def add(text="", conditions=(), sources=(), max_grade=None, limit=10, offset=0):
        queries.append({"text": text, "conditions": list(conditions), "sources": list(sources),
                        "max_grade": max_grade, "limit": limit, "offset": offset})

    fixed = ["", "the", "*", "\U0001f642", "vns", "VNS sleep", "M79.7 sleep", "F43.10",
             "how common is fibro", "is vns right for me", "does vns reduce opioid use",
             '"chronic pain" sleep', '"vagus nerve', "vagal nerve stimulator for ptsd",
             "fibromyalgai", "slep qualty", "hoarseness", "post-traumatic stress"]
    for text in fixed:
        add(text)
    for label in labels:
        add(label)
    while len(queries) < count:
        record = rng.choice(records)
        words = _WORD.findall(record["text"]) or ["pain"]
        kind = rng.randrange(10)
        pick = " ".join(rng.sample(words, min(len(words), rng.randint(1, 3))))
        if kind == 0:
            start = rng.randrange(len(words))
            add('"' + " ".join(words[start:start + rng.randint(2, 3)]) + '"')
        elif kind == 1:
            add(" ".join(_WORD.findall(record["title"])[:rng.randint(1, 4)]))
        elif kind == 2 and slugs:
            add(pick, conditions=rng.sample(slugs, rng.randint(1, 2)))
        elif kind == 3:
            add(pick, sources=[record["source_id"]])
        elif kind == 4:
            add(pick, max_grade=rng.choice([6.0, 8.5, 10.0, 12.0]))
        elif kind == 5:
            long = [w for w in words if len(w) > 5] or words
            add(_typo(rng.choice(long), rng) if len(long[0]) > 3 else pick)
        elif kind == 6:
            add(pick, limit=5, offset=rng.choice([0, 5, 10]))
        elif kind == 7 and slugs:
            add("", conditions=[rng.choice(slugs)], offset=rng.choice([0, 10]))
        elif kind == 8:
            add(" ".join(words[:rng.randint(3, 6)]))
        else:
            add(pick)
    return queries[:count]


def answer(gen, query: dict[str, Any]) -> dict[str, Any]:
    from service.presenters import highlight

    result = gen.search(SearchQuery(
        text=query["text"], conditions=tuple(query["conditions"]),
        sources=tuple(query["sources"]), max_grade=query["max_grade"], limit=query["limit"],
        offset=query["offset"]))
    return {"hits": [[h.id, h.score, highlight(h)] for h in result.hits],
            "total": result.total, "match": result.match, "suggestion": result.suggestion}


def record(index_dir: Path, count: int) -> dict[str, Any]:
    reader = IndexReader(index_dir)
    try:
        gen = reader.generation()
        queries = make_queries(gen, count)
        return {"queries": [dict(q, answer=answer(gen, q)) for q in queries]}
    finally:
        reader.close()


def differences(gen, recorded: dict[str, Any], rel: float = 1e-9) -> list[str]:
    """What differs from a recording, one line per query that differs."""
    found = []
    for number, query in enumerate(recorded["queries"]):
        want, got = query["answer"], answer(gen, query)
        problems = []
        for key in ("total", "match", "suggestion"):
            if want[key] != got[key]:
                problems.append(f"{key} {want[key]!r} -> {got[key]!r}")
        if [h[0] for h in want["hits"]] != [h[0] for h in got["hits"]]:
            problems.append(f"ids {[h[0] for h in want['hits']]} -> {[h[0] for h in got['hits']]}")
        else:
            for (_, ws, wh), (_, gs, gh) in zip(want["hits"], got["hits"], strict=True):
                if (ws is None) != (gs is None) or (ws is not None and
                                                    abs(ws - gs) > rel * max(1, abs(ws)) + 1e-4):
                    problems.append(f"score {ws} -> {gs}")
                if wh != gh:
                    problems.append(f"highlight {wh!r} -> {gh!r}")
        if problems:
            found.append(f"#{number} {query['text']!r} {query['conditions']} {query['sources']}"
                         f" {query['max_grade']}: " + "; ".join(problems))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["record", "compare"])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=300)
    options = parser.parse_args()
    if options.mode == "record":
        options.out.parent.mkdir(parents=True, exist_ok=True)
        data = record(options.index, options.count)
        lines = [json.dumps(q, ensure_ascii=False, separators=(",", ":"))
                 for q in data["queries"]]
        options.out.write_text('{"queries": [\n' + ",\n".join(lines) + "\n]}\n",
                               encoding="utf-8")
        print(f"recorded {len(data['queries'])} answers in {options.out}")
        return
    reader = IndexReader(options.index)
    try:
        recorded = json.loads(options.out.read_text(encoding="utf-8"))
        found = differences(reader.generation(), recorded)
    finally:
        reader.close()
    for line in found:
        print(line)
    print(f"{len(recorded['queries']) - len(found)} of {len(recorded['queries'])} answers "
          "unchanged")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
