"""The snippets service: a Flask API over the index, built by create_app()."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Flask, Response
from flask_limiter import RateLimitExceeded
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from index.errors import IndexUnavailable
from index.search import IndexReader

from . import bodies, caching, cds_auth, feedback, links, probes, ratelimit, security, spec_extras
from .config import Config
from .errors import PROBLEM_JSON, handle_http_exception, problem_response
from .schemas import ProblemSchema


class SnippetsApi(Api):
    """flask-smorest's Api, with problem+json as the one documented and returned error shape."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        # Same components as flask-smorest registers, but with our error media type.
        for status in HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Error (problem details)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def handle_http_exception(self, error: HTTPException):
        if isinstance(error, RateLimitExceeded):
            return problem_response(429, ratelimit.exceeded_detail(error))
        return handle_http_exception(error)


class NoRedirectMap(Map):
    """URL rules that never redirect: Werkzeug answers its redirects itself, with an HTML body.
    `/v1//sources` is a 404 problem, as `/v1/sources/` is (no rule ends with a slash, so
    strict_slashes never redirects either; a test checks that)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("merge_slashes", False)
        super().__init__(*args, **kwargs)


class SnippetsFlask(Flask):
    url_map_class = NoRedirectMap

    def make_default_options_response(self) -> Response:
        """OPTIONS: 204 with the Allow header and no body (Flask's default is an empty 200
        labelled text/html); CORS preflights get their headers from flask-cors on top."""
        response = super().make_default_options_response()
        response.status_code = 204
        response.headers.pop("Content-Type", None)
        return response


def _index_unavailable(error: IndexUnavailable):
    return problem_response(503, f"the index is not available: {probes.public_reason(error)}",
                            headers={"Retry-After": "5"})


def create_app(config: type | dict | None = None) -> Flask:
    app = SnippetsFlask(__name__)
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    links.check_public_url(app)
    security.init_app(app)
    ratelimit.init_app(app)
    bodies.init_app(app)

    api = SnippetsApi(app, spec_kwargs={
        "info": {"description": "Paragraph-level patient-education snippets, each with an exact "
                                "citation and the caveats a clinician should read first.",
                 "license": spec_extras.LICENSE, "contact": spec_extras.CONTACT},
        "servers": spec_extras.SERVERS,
        "extra_plugins": [spec_extras.SpecExtras()],
        # Keys are optional: required only where the operator configures SNIPPETS_API_KEYS.
        "security": [{}, {"bearerAuth": []}, {"apiKeyHeader": []}],
    })
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme(
        "apiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    app.extensions["snippets_api"] = api
    app.extensions["snippets_index"] = IndexReader(app.config["INDEX_DIR"])
    app.register_error_handler(IndexUnavailable, _index_unavailable)
    caching.init_app(app)
    cds_auth.init_app(app)
    feedback.init_app(app)

    from . import catalogue, cds_hooks, docs, handout_api, health, infobutton, pages, snippets

    api.register_blueprint(snippets.blp)
    api.register_blueprint(catalogue.sources_blp)
    api.register_blueprint(catalogue.conditions_blp)
    api.register_blueprint(catalogue.caveats_blp)
    api.register_blueprint(infobutton.blp)
    api.register_blueprint(cds_hooks.blp)
    api.register_blueprint(feedback.blp)
    api.register_blueprint(health.blp)
    api.register_blueprint(handout_api.blp)
    # flask-smorest's pagination schema: no operation here paginates that way.
    api.spec.components.schemas.pop("PaginationMetadata", None)
    app.register_blueprint(docs.blp)
    app.register_blueprint(pages.blp)
    return app
