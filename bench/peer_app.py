"""A peer service for `make bench`: plain Flask over the same paragraphs as our index, searched
by SQLite FTS5 or tantivy with the in-process baselines' code (bench/perf_baselines.py).

    PEER_ENGINE=fts5 PEER_INDEX=bench/out/work/fts5-all.sqlite \\
        .venv/bin/python -m gunicorn --chdir bench --workers 2 --no-control-socket \\
        --bind 127.0.0.1:8001 'peer_app:create_app()'

PEER_ENGINE is `fts5` (PEER_INDEX: the SQLite file) or `tantivy` (PEER_INDEX: the index
directory), both built by bench/perf.py. Each worker opens the index when gunicorn loads the
app in it (no --preload, so nothing is opened before the fork).

The route has our shape, `GET /v1/snippets?q=...&condition=...&source=...` (condition and source
repeatable): every content word and quoted phrase required (AND), the filters, the top 10 by
BM25 with our field weights, the total number of matches, and for each hit its id, text, text
with the matches marked (`highlight`), score and citation (source id, title, section). There is
no result cache, no query expansion, no relaxing and no validation beyond reading the
parameters. `GET /healthz` answers without touching the index.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import perf_baselines
from flask import Flask, request

ENGINES = {"fts5": perf_baselines.Fts5, "tantivy": perf_baselines.Tantivy}
LIMIT = 10


def create_app(engine: str | None = None, index: str | None = None) -> Flask:
    kind = engine or os.environ.get("PEER_ENGINE", "")
    path = Path(index or os.environ.get("PEER_INDEX", ""))
    if kind not in ENGINES:
        raise RuntimeError(f"PEER_ENGINE must be one of {', '.join(ENGINES)}, not {kind!r}")
    if not str(path) or not path.exists():
        raise RuntimeError(f"PEER_INDEX {str(path)!r} does not exist")
    searcher = ENGINES[kind](path)
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "engine": kind}

    @app.get("/v1/snippets")
    def snippets() -> dict[str, Any]:
        text = " ".join(request.args.get("q", "").split())
        conditions = request.args.getlist("condition")
        sources = request.args.getlist("source")
        total, hits = searcher.search(text, conditions, sources, limit=LIMIT)
        return {
            "query": {"q": text, "condition": conditions, "source": sources},
            "total": total,
            "limit": LIMIT,
            "results": [{"id": hit_id, "text": body, "highlight": marked, "score": score,
                         "citation": {"source_id": source_id, "title": title,
                                      "section": section or None}}
                        for hit_id, source_id, title, section, body, marked, score in hits],
        }

    return app
