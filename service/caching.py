"""Conditional GETs and repeated answers: ETags tied to the index generation, 304s, and the
bytes of recent answers kept per worker."""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from index.errors import IndexUnavailable
from index.lru import LRU

from . import presenters

# GET answers that come from the index only (not probes, docs or the spec).
CACHEABLE_PREFIXES = ("/v1/", "/infobutton")


def _requested_url(environ) -> str:
    """The URL as the client sent it (host, path, raw query string): what an answer depends
    on. Read from the WSGI environment, as werkzeug's request.url re-quotes it each time."""
    return (f"{environ.get('wsgi.url_scheme', '')}://{environ.get('HTTP_HOST', '')}"
            f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"
            f"?{environ.get('QUERY_STRING', '')}")


def _conditional_get():
    """304 when the client already holds this answer for the generation in service."""
    if request.method != "GET" or not request.path.startswith(CACHEABLE_PREFIXES):
        return None
    try:
        tag = presenters.etag(presenters.generation(), _requested_url(request.environ))
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


# Clients may keep answers but must revalidate (cheap: a 304) so a new generation shows at once.
CACHE_CONTROL = "private, no-cache"


def init_app(app: Flask) -> None:
    # Answer bytes by ETag (the ETag names the generation, so an old generation's answers
    # simply age out).
    app.extensions["snippets_responses"] = LRU(app.config["RESPONSE_CACHE_SIZE"])
    app.before_request(_conditional_get)
    app.after_request(_validators)
