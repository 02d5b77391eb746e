"""/v1/sources, /v1/conditions, /v1/caveats: what the index holds, for auditing and pickers."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort

from . import presenters
from .schemas import CaveatListSchema, ConditionListSchema, SourceDetailSchema, SourceListSchema

sources_blp = Blueprint("sources", __name__, url_prefix="/v1/sources",
                        description="Source articles with their metadata and snippet ids.")
conditions_blp = Blueprint("conditions", __name__, url_prefix="/v1/conditions",
                           description="The condition vocabulary with codes and counts.")
caveats_blp = Blueprint("caveats", __name__, url_prefix="/v1/caveats",
                        description="The caveat catalogue, for clinical review.")


@sources_blp.route("")
class SourceList(MethodView):
    @sources_blp.response(200, SourceListSchema)
    def get(self):
        """List the source articles."""
        gen = presenters.generation()
        sources = [presenters.source(s) for s in gen.sources.values()]
        return {"total": len(sources), "sources": sources, "index": presenters.index_info(gen)}


@sources_blp.route("/<string:source_id>")
class SourceById(MethodView):
    @sources_blp.response(200, SourceDetailSchema)
    def get(self, source_id):
        """One source article with the ids of its snippets, in reading order."""
        gen = presenters.generation()
        record = gen.sources.get(source_id)
        if record is None:
            abort(404, message=f"no source with id {source_id!r}")
        return presenters.source(record, with_snippets=True)


@conditions_blp.route("")
class ConditionList(MethodView):
    @conditions_blp.response(200, ConditionListSchema)
    def get(self):
        """List the condition vocabulary with codes and snippet counts."""
        gen = presenters.generation()
        meta = gen.vocabulary_meta
        return {"total": len(gen.conditions), "conditions": gen.conditions,
                "codes_source": meta.get("codes_source"),
                "codes_last_checked": meta.get("codes_last_checked"),
                "index": presenters.index_info(gen)}


@caveats_blp.route("")
class CaveatList(MethodView):
    @caveats_blp.response(200, CaveatListSchema)
    def get(self):
        """List every caveat with its text, source, review date and attachment rules."""
        gen = presenters.generation()
        counts = gen.manifest["counts"]["per_caveat"]
        caveats = [dict(c, snippet_count=counts.get(c["id"], 0)) for c in gen.caveats.values()]
        return {"total": len(caveats), "caveats": caveats, "index": presenters.index_info(gen)}
