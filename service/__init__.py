"""The snippets service: a Flask API over the index, built by create_app()."""

from __future__ import annotations

import threading
from collections import OrderedDict
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from index.errors import IndexUnavailable
from index.search import IndexReader

from . import presenters, security
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
        return handle_http_exception(error)


def _index_unavailable(error: IndexUnavailable):
    return problem_response(503, f"the index is not available: {error}",
                            headers={"Retry-After": "5"})


# GET answers that come from the index only (not probes, docs or the spec).
CACHEABLE_PREFIXES = ("/v1/", "/infobutton")


def _conditional_get():
    """304 when the client already holds this answer for the generation in service."""
    if request.method != "GET" or not request.path.startswith(CACHEABLE_PREFIXES):
        return None
    try:
        tag = presenters.etag(presenters.generation(), request.url)
    except IndexUnavailable:
        return None  # the view answers 503
    g.etag = tag
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
    else:
        # The same URL on the same generation is the same answer: serve the bytes we made
        # last time, without parsing, searching or serialising again.
        cached = current_app.extensions["snippets_responses"].get(tag)
        if cached is None:
            return None
        response = Response(cached[0], mimetype=cached[1])
    response.set_etag(tag, weak=True)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def _validators(response: Response) -> Response:
    tag = g.get("etag")
    if tag and response.status_code == 200:
        if "ETag" not in response.headers:  # made by a view, not from the cache
            current_app.extensions["snippets_responses"].put(
                tag, (response.get_data(), response.mimetype))
        response.set_etag(tag, weak=True)
        response.headers["Cache-Control"] = CACHE_CONTROL
    return response


class ResponseCache:
    """A small thread-safe LRU of answer bytes by ETag (the ETag names the generation, so
    answers of an old generation simply age out)."""

    def __init__(self, size: int):
        self._size = size
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, item: tuple[bytes, str]) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


# Clients may keep answers but must revalidate (cheap: a 304) so a new generation shows at once.
CACHE_CONTROL = "private, no-cache"


def create_app(config: type | dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    security.init_app(app)

    api = SnippetsApi(app, spec_kwargs={
        "info": {"description": "Paragraph-level patient-education snippets, each with an exact "
                                "citation and the caveats a clinician should read first."},
        # Keys are optional: required only where the operator configures SNIPPETS_API_KEYS.
        "security": [{}, {"bearerAuth": []}, {"apiKeyHeader": []}],
    })
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme(
        "apiKeyHeader", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    app.extensions["snippets_api"] = api
    app.extensions["snippets_index"] = IndexReader(app.config["INDEX_DIR"])
    app.extensions["snippets_responses"] = ResponseCache(app.config["RESPONSE_CACHE_SIZE"])
    app.register_error_handler(IndexUnavailable, _index_unavailable)
    app.before_request(_conditional_get)
    app.after_request(_validators)

    from . import catalogue, cds_hooks, docs, health, infobutton, snippets

    api.register_blueprint(snippets.blp)
    api.register_blueprint(catalogue.sources_blp)
    api.register_blueprint(catalogue.conditions_blp)
    api.register_blueprint(catalogue.caveats_blp)
    api.register_blueprint(infobutton.blp)
    api.register_blueprint(cds_hooks.blp)
    api.register_blueprint(health.blp)
    app.register_blueprint(docs.blp)
    return app
