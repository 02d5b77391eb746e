"""/healthz (the process is alive) and /readyz (an index is open and answering)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from . import presenters, ratelimit
from .schemas import HealthSchema, ReadySchema

blp = Blueprint("health", __name__, description="Liveness and readiness for load balancers.")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up (does not touch the index)."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, ReadySchema)
    @blp.alt_response(503, "SERVICE_UNAVAILABLE")
    def get(self):
        """An index generation is open: its version, build time and counts; else 503 and why.

        A shared rate-limit storage that does not answer is reported, not a 503."""
        gen = presenters.generation()
        gen.probe()
        counts = gen.manifest["counts"]
        storage = ratelimit.storage_status(current_app)
        return {"status": "degraded" if storage == "degraded" else "ready",
                "rate_limit_storage": storage, "version": gen.version,
                "built_at": gen.manifest["built_at"],
                "generation": gen.name, "sources": counts["sources"],
                "snippets": counts["snippets"]}
