"""Pages for people, rendered on the server: the clinician search page (/), one snippet
(/snippets/<id>), one article (/sources/<id>) and the printable patient handout (/handout).

They work without JavaScript and load nothing but this server's own stylesheet (the CSP in
service/security.py allows no other). Errors are pages too (404 and 400 with the reason), not
problem+json: a person opened them.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, current_app, render_template, request, url_for

from index.errors import IndexUnavailable
from index.search import Hit, SearchQuery

from . import handout, presenters

blp = Blueprint("pages", __name__, static_folder="static", static_url_path="/assets")
PAGE_SIZE = 10
MAX_OFFSET = 10_000
# Reading-grade filter: (max grade, what the option says).
GRADE_CHOICES = [(6.0, "Easy: US school grade 6 or below"),
                 (8.0, "Fairly easy: grade 8 or below"),
                 (12.0, "High school: grade 12 or below")]


def grade_words(grade: float | None) -> str:
    """A Flesch-Kincaid grade in plain words."""
    if grade is None or not math.isfinite(grade):
        return "Reading level unknown"
    shown = f"{max(grade, 0):.1f}"
    if grade <= 6:
        band = "Easy to read"
    elif grade <= 8:
        band = "Fairly easy to read"
    elif grade <= 12:
        band = "High-school reading level"
    else:
        band = "College reading level"
    return f"{band} (US school grade {shown}, Flesch-Kincaid)"


@blp.app_template_filter("grade_words")
def _grade_words_filter(grade):
    return grade_words(grade)


def _page(template: str, status: int = 200, **context):
    return render_template(template, **context), status, {"Content-Type":
                                                          "text/html; charset=utf-8"}


def error_page(status: int, title: str, detail: str, **context):
    return _page("error.html", status, status_code=status, title=title, detail=detail,
                 **context)


def _search_args(gen) -> tuple[dict[str, Any], list[str]]:
    """The search form's values, and what is wrong with them (each a sentence)."""
    args = request.args
    errors = []
    q = " ".join(args.get("q", "").split())
    limit = current_app.config["MAX_QUERY_LENGTH"]
    if len(q) > limit:
        errors.append(f"Keep the question under {limit} characters (it has {len(q)}).")
    condition = args.get("condition", "").strip()
    labels = {c["slug"]: c["label"] for c in gen.conditions}
    if condition and condition not in labels:
        errors.append(f"There is no condition {condition!r} in the vocabulary; choose one "
                      "from the list.")
    max_grade = None
    raw_grade = args.get("max_grade", "").strip()
    if raw_grade:
        try:
            max_grade = float(raw_grade)
        except ValueError:
            max_grade = math.nan
        if not math.isfinite(max_grade) or not 0 <= max_grade <= 30:
            errors.append("The reading grade must be a number from 0 to 30.")
            max_grade = None
    offset = 0
    raw_offset = args.get("offset", "").strip()
    if raw_offset:
        if raw_offset.isdigit() and int(raw_offset) <= MAX_OFFSET:
            offset = int(raw_offset)
        else:
            errors.append(f"The page offset must be a whole number from 0 to {MAX_OFFSET}.")
    return {"q": q, "condition": condition, "max_grade": max_grade, "offset": offset,
            "raw_grade": raw_grade}, errors


def _search_url(form: dict[str, Any], **changes) -> str:
    values = {"q": form["q"], "condition": form["condition"], "max_grade": form["raw_grade"],
              "offset": form["offset"], **changes}
    query = urlencode({k: v for k, v in values.items() if v not in ("", None, 0)})
    return url_for("pages.search") + (f"?{query}" if query else "")


@blp.errorhandler(IndexUnavailable)
def _index_unavailable(error: IndexUnavailable):
    body, status, headers = error_page(503, "The index is not available",
                                       f"The search index cannot be read just now: {error}. "
                                       "Try again in a moment.")
    return body, status, dict(headers, **{"Retry-After": "5"})


@blp.get("/")
def search():
    gen = presenters.generation()
    form, errors = _search_args(gen)
    context: dict[str, Any] = {"form": form, "errors": errors, "conditions": gen.conditions,
                               "grade_choices": GRADE_CHOICES, "result": None, "results": [],
                               "disclaimer": presenters.response_caveats(gen)}
    if errors:
        return _page("search.html", 400, **context)
    if form["q"] or form["condition"] or form["max_grade"] is not None:
        result = gen.search(SearchQuery(
            text=form["q"], conditions=(form["condition"],) if form["condition"] else (),
            max_grade=form["max_grade"], limit=PAGE_SIZE, offset=form["offset"]))
        context["result"] = result
        context["results"] = [presenters.snippet(gen, hit) for hit in result.hits]
        if result.suggestion:
            context["suggestion_url"] = _search_url(form, q=result.suggestion, offset=0)
        if form["offset"]:
            context["previous_url"] = _search_url(form, offset=max(form["offset"] - PAGE_SIZE,
                                                                   0))
        if form["offset"] + PAGE_SIZE < result.total:
            context["next_url"] = _search_url(form, offset=form["offset"] + PAGE_SIZE)
    return _page("search.html", **context)


def _neighbour(gen, snippet_id: str | None) -> dict[str, Any] | None:
    if snippet_id is None:
        return None
    record = gen.snippet(snippet_id)
    return None if record is None else presenters.snippet(gen, Hit(-1, record, None))


@blp.get("/snippets/<string:snippet_id>")
def snippet_page(snippet_id: str):
    gen = presenters.generation()
    record = gen.snippet(snippet_id)
    if record is None:
        return error_page(404, "Snippet not found",
                          f"There is no snippet with id {snippet_id!r} in index {gen.version}. "
                          "It may come from an older index; search for its words instead.")
    previous_id, next_id = gen.neighbours(snippet_id)
    return _page("snippet.html", snippet=presenters.snippet(gen, Hit(-1, record, None)),
                 source=gen.sources.get(record["source_id"]),
                 previous=_neighbour(gen, previous_id), next=_neighbour(gen, next_id),
                 disclaimer=presenters.response_caveats(gen))


@blp.get("/sources/<string:source_id>")
def source_page(source_id: str):
    gen = presenters.generation()
    source = gen.sources.get(source_id)
    if source is None:
        return error_page(404, "Article not found",
                          f"There is no source article with id {source_id!r}.")
    paragraphs = [presenters.snippet(gen, Hit(-1, record, None))
                  for record in (gen.snippet(sid) for sid in source["snippet_ids"])
                  if record is not None]
    return _page("source.html", source=source, paragraphs=paragraphs,
                 disclaimer=presenters.response_caveats(gen))


@blp.get("/handout")
def handout_page():
    gen = presenters.generation()
    try:
        made = handout.build(gen, request.args.getlist("snippet"))
    except handout.HandoutProblem as problem:
        title = {400: "The handout cannot be made", 404: "Snippet not found"}[problem.status]
        return error_page(problem.status, title, problem.detail[0].upper() + problem.detail[1:]
                          + ".", unknown=problem.unknown)
    return handout.render(made), 200, {"Content-Type": "text/html; charset=utf-8"}
