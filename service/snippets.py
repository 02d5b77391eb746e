"""/v1/snippets: search, and one snippet with its neighbours."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import RAISE

from index.search import Hit, SearchQuery, split_query

from . import presenters
from .codes import Coding
from .errors import bad_parameter
from .schemas import SearchArgs, SearchResponseSchema, SnippetDetailSchema

SEARCH_ARGS = SearchArgs()
blp = Blueprint("snippets", __name__, url_prefix="/v1/snippets",
                description="Search paragraph-level snippets, each cited and caveated.")


def _resolve_codes(gen, codings: list[Coding]) -> tuple[list[str], list[str], list[str]]:
    """(canonical tokens, condition slugs they map to, tokens no vocabulary entry covers)."""
    canonical, slugs, unmatched = [], [], []
    for coding in codings:
        canonical.append(coding.token)
        found = gen.conditions_for_code(coding.system, coding.code)
        if found:
            slugs.extend(found)
        else:
            unmatched.append(coding.token)
    return canonical, slugs, unmatched


@blp.route("")
class SnippetSearch(MethodView):
    # An instance, not the class: webargs would build a schema per request from a class.
    @blp.arguments(SEARCH_ARGS, location="query", unknown=RAISE, error_status_code=400)
    @blp.response(200, SearchResponseSchema)
    @blp.alt_response(404, "NOT_FOUND")
    def get(self, args):
        """Search snippets by words, condition, code, source and reading grade."""
        gen = presenters.generation()
        known = {c["slug"] for c in gen.conditions}
        # A filter naming something that does not exist is a 404 that names it, like a path
        # to a missing resource would be.
        for slug in args["condition"]:
            if slug not in known:
                bad_parameter("condition", f"unknown condition {slug!r}; see /v1/conditions "
                                           "for the vocabulary", status=404)
        for source_id in args["source"]:
            if source_id not in gen.sources:
                bad_parameter("source", f"unknown source {source_id!r}; see /v1/sources",
                              status=404)
        codes, code_slugs, unmatched = _resolve_codes(gen, args["code"])
        text = " ".join(args["q"].split())
        conditions = list(dict.fromkeys(args["condition"] + code_slugs))
        if args["code"] and not conditions:
            # Only codes were given and none is covered: nothing can match, and that is not
            # an error (problem lists are full of codes we have no snippets for).
            result = None
        else:
            result = gen.search(SearchQuery(
                text=text, conditions=tuple(conditions), sources=tuple(args["source"]),
                max_grade=args["max_grade"], limit=args["limit"], offset=args["offset"]))
        words, phrases = (result.words, result.phrases) if result else split_query(text)
        # The schema above documents this answer; it is serialised from parts prepared once
        # per generation (tests/test_api_spec.py validates answers against the schema).
        return presenters.search_response(gen, {
            "query": {"q": text, "words": words, "phrases": phrases, "condition": conditions,
                      "code": codes, "source": args["source"], "max_grade": args["max_grade"]},
            "total": result.total if result else 0,
            "limit": args["limit"],
            "offset": args["offset"],
            "match": result.match if result else "all",
            "suggestion": result.suggestion if result else None,
            "not_found": result.not_found if result else [],
            "unmatched_codes": unmatched,
        }, result.hits if result else [])


@blp.route("/<string:snippet_id>")
class SnippetById(MethodView):
    @blp.response(200, SnippetDetailSchema)
    def get(self, snippet_id):
        """One snippet with its citation, caveats and neighbouring snippet ids."""
        gen = presenters.generation()
        record = gen.snippet(snippet_id)
        if record is None:
            abort(404, message=f"no snippet with id {snippet_id!r} in index {gen.version}")
        out = presenters.snippet(gen, Hit(-1, record, None))
        out["previous_id"], out["next_id"] = gen.neighbours(snippet_id)
        return out
