"""Turn index records into the API's JSON shapes (shared by REST and the EHR adapters)."""

from __future__ import annotations

import hashlib
import html
import json
import threading
import weakref
from typing import Any

from flask import Response, current_app

from index.lru import LRU
from index.search import Generation, Hit, IndexReader


def generation() -> Generation:
    """The index generation in service for this request (raises IndexUnavailable -> 503)."""
    reader: IndexReader = current_app.extensions["snippets_index"]
    return reader.generation()


def etag(gen: Generation, url: str) -> str:
    """A weak validator for a GET answer: the index generation and the exact URL asked for.
    A generation never changes, so the same URL on the same generation is the same answer."""
    return f"{gen.version}-{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def index_info(gen: Generation) -> dict[str, str]:
    return {"version": gen.version, "built_at": gen.manifest["built_at"]}


def caveat(gen: Generation, caveat_id: str) -> dict[str, Any]:
    entry = gen.caveats[caveat_id]
    return {key: entry[key] for key in ("id", "kind", "severity", "text", "plain_text", "source")}


def response_caveats(gen: Generation) -> list[dict[str, Any]]:
    return [caveat(gen, cid) for cid, entry in gen.caveats.items() if entry["scope"] == "response"]


def highlight(hit: Hit) -> str:
    """The snippet's text HTML-escaped, with <mark> around each matched token."""
    text = hit.record["text"]
    out, last = [], 0
    for start, end in hit.spans:
        out.append(html.escape(text[last:start], quote=False))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        last = end
    out.append(html.escape(text[last:], quote=False))
    return "".join(out)


# What a snippet's JSON holds besides its score and highlight, made once per generation and
# snippet (a generation never changes) and shared by every answer that shows the snippet.
_PREPARED: weakref.WeakKeyDictionary[Generation, LRU[tuple[dict[str, Any], str]]] = \
    weakref.WeakKeyDictionary()
_PREPARED_LOCK = threading.Lock()
PREPARED_PER_GENERATION = 1_000  # about 5 kB each


def _prepared(gen: Generation, record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    with _PREPARED_LOCK:
        kept = _PREPARED.get(gen)
        if kept is None:
            kept = _PREPARED[gen] = LRU(PREPARED_PER_GENERATION)
    found = kept.get(record["id"])
    if found is None:
        prepared = {
            "id": record["id"],
            "text": record["text"],
            "conditions": record["conditions"],
            "reading_grade": record["reading_grade"],
            "lead_in": record.get("lead_in"),
            "caveats": [caveat(gen, cid) for cid in record["caveats"] if cid in gen.caveats],
            "also_in": record.get("also_in", []),
            "also_in_total": record.get("also_in_total", 0),
            "citation": {
                "source_id": record["source_id"],
                "title": record["title"],
                "section": record.get("section"),
                "paragraph": record["paragraph"],
                "char_start": record["char_start"],
                "char_end": record["char_end"],
                "url": record.get("url"),
                "retrieved": record.get("retrieved"),
                "text_sha256": record["text_sha256"],
            },
        }
        # The dict, and its JSON without the closing brace (score and highlight follow).
        found = kept.put(record["id"], (prepared, _json(prepared)[:-1]))
    return found


def snippet(gen: Generation, hit: Hit) -> dict[str, Any]:
    """A hit as the API shows it (shares the prepared parts: treat as read-only)."""
    return dict(_prepared(gen, hit.record)[0], score=hit.score, highlight=highlight(hit),
                matched=list(hit.matched))


# One encoder for every call: json.dumps with arguments builds a new one each time.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def search_response(gen: Generation, head: dict[str, Any], hits: list[Hit]) -> Response:
    """A search answer (SearchResponseSchema) as JSON: each hit's prepared JSON with its score
    and highlight appended, the generation's response caveats and index info."""
    results = ",".join(f'{_prepared(gen, hit.record)[1]},"score":{_json(hit.score)},'
                       f'"highlight":{_json(highlight(hit))},"matched":{_json(hit.matched)}}}'
                       for hit in hits)
    body = _json(dict(head, caveats=response_caveats(gen), index=index_info(gen)))
    return Response(f'{body[:-1]},"results":[{results}]}}', mimetype="application/json")


def source(record: dict[str, Any], with_snippets: bool = False) -> dict[str, Any]:
    keys = ("id", "title", "publisher", "url", "retrieved", "license", "last_reviewed", "focus",
            "text_sha256")
    out = {key: record.get(key) for key in keys}
    out["snippet_count"] = len(record["snippet_ids"])
    if with_snippets:
        out["snippet_ids"] = list(record["snippet_ids"])
    return out
