"""A patient handout: chosen snippets in the order given, each with its plain-language caveats,
where each comes from, the date and the disclaimer. Rendered as a printable HTML page (/handout)
and filed as the same HTML in a FHIR DocumentReference (/v1/handout)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import render_template

from index.search import Generation, Hit

from . import presenters

MAX_SNIPPETS = 20
TITLE = "Health information for you"


class HandoutProblem(Exception):
    """What is wrong with the snippet ids asked for: a status and a sentence that says why."""

    def __init__(self, status: int, detail: str, unknown: list[str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.unknown = unknown or []


def records_for(gen: Generation, ids: list[str]) -> list[dict[str, Any]]:
    """The snippets asked for, in the order asked (an id given twice is shown once)."""
    if not ids or not any(i.strip() for i in ids):
        raise HandoutProblem(400, "choose at least one snippet for the handout "
                                  "(snippet=<id>, repeatable)")
    if len(ids) > MAX_SNIPPETS:
        raise HandoutProblem(400, f"a handout holds at most {MAX_SNIPPETS} snippets; "
                                  f"{len(ids)} were given")
    wanted = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    found = {sid: gen.snippet(sid) for sid in wanted}
    unknown = [sid for sid, record in found.items() if record is None]
    if unknown:
        raise HandoutProblem(404, "no snippet with id " + ", ".join(repr(u) for u in unknown)
                             + f" in index {gen.version}", unknown)
    return [found[sid] for sid in wanted]


def patient_text(caveat: dict[str, Any]) -> str:
    """The caveat's plain-language text; its clinical text where none was written."""
    return caveat.get("plain_text") or caveat["text"]


@dataclass
class Handout:
    items: list[dict[str, Any]]  # presenters.snippet shapes, in the order asked
    sources: list[dict[str, Any]]  # each source cited, in first-cited order, with its items
    disclaimers: list[str]
    created: datetime
    index_version: str

    @property
    def title(self) -> str:
        return TITLE

    @property
    def date(self) -> str:
        return self.created.date().isoformat()


def build(gen: Generation, ids: list[str], now: datetime | None = None) -> Handout:
    records = records_for(gen, ids)
    items = [presenters.snippet(gen, Hit(-1, record, None)) for record in records]
    sources: dict[str, dict[str, Any]] = {}
    for number, item in enumerate(items, 1):
        citation = item["citation"]
        meta = gen.sources.get(citation["source_id"], {})
        entry = sources.setdefault(citation["source_id"], {
            "id": citation["source_id"], "title": citation["title"],
            "publisher": meta.get("publisher"), "url": citation["url"],
            "retrieved": citation["retrieved"], "license": meta.get("license"), "cited": []})
        entry["cited"].append({"number": number, "section": citation["section"],
                               "paragraph": citation["paragraph"]})
    disclaimers = [patient_text(c) for c in presenters.response_caveats(gen)]
    return Handout(items=items, sources=list(sources.values()), disclaimers=disclaimers,
                   created=(now or datetime.now(UTC)).replace(microsecond=0),
                   index_version=gen.version)


def render(handout: Handout, standalone: bool = False) -> str:
    """The handout page. `standalone`: styles inline in the document (for filing in a chart,
    where our stylesheet cannot be fetched); otherwise linked from this server."""
    return render_template("handout.html", handout=handout, patient_text=patient_text,
                           standalone=standalone, standalone_css=_print_css() if standalone
                           else "")


def _print_css() -> str:
    return (Path(__file__).parent / "static" / "handout.css").read_text(encoding="utf-8")
