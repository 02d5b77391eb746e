"""Conditional GETs and repeated answers: ETags tied to the index generation, 304s, and the
bytes of recent answers kept per worker, within SNIPPETS_RESPONSE_CACHE_MB."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import Flask, Response, current_app, g, request

from index.errors import IndexUnavailable
from index.lru import LRU

from . import presenters

# GET answers that come from the index only (not probes, docs or the spec).
CACHEABLE_PREFIXES = ("/v1/", "/infobutton")
# The media types answers come in; a request's Accept header is reduced to one of them.
MEDIA_TYPES = ("application/json", "text/xml", "application/xml", "application/atom+xml")


def answer_key(environ) -> str:
    """What an answer depends on: the path, the parameters decoded and sorted (so `a=1&b=2`,
    `b=2&a=1` and `q=a%20b` / `q=a+b` are one answer) and the media type asked for. Never the
    Host header: absolute links come from SNIPPETS_PUBLIC_URL, and varying the Host must not
    make new cache entries."""
    path = environ.get("PATH_INFO", "")
    pairs = sorted(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    media = request.accept_mimetypes.best_match(MEDIA_TYPES, MEDIA_TYPES[0])
    return f"{path}?{pairs!r}#{media}"


def _conditional_get():
    """304 when the client already holds this answer for the generation in service."""
    if request.method != "GET" or not request.path.startswith(CACHEABLE_PREFIXES):
        return None
    try:
        tag = presenters.etag(presenters.generation(), answer_key(request.environ))
    except IndexUnavailable:
        return None  # the view answers 503
    g.etag = tag
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
    else:
        # The same question on the same generation is the same answer: serve the bytes we
        # made last time, without parsing, searching or serialising again.
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
            cache: LRU = current_app.extensions["snippets_responses"]
            data = response.get_data()
            if len(data) <= cache.budget:  # one answer larger than the budget is not kept
                cache.put(tag, (data, response.mimetype))
        response.set_etag(tag, weak=True)
        response.headers["Cache-Control"] = CACHE_CONTROL
    return response


# Clients may keep answers but must revalidate (cheap: a 304) so a new generation shows at once.
CACHE_CONTROL = "private, no-cache"


def answer_size(value: tuple[bytes, str]) -> int:
    """Bytes an entry holds: the answer, its media type and the entry's own overhead."""
    return len(value[0]) + len(value[1]) + 200


def init_app(app: Flask) -> None:
    # Answer bytes by ETag (the ETag names the generation, so an old generation's answers
    # simply age out), bounded by their size in bytes.
    budget = int(app.config["RESPONSE_CACHE_MB"] * 1024 * 1024)
    app.extensions["snippets_responses"] = LRU(budget, size=answer_size)
    app.before_request(_conditional_get)
    app.after_request(_validators)
