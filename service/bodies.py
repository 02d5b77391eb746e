"""Request bodies, checked before any view reads them: the size limit also on chunked bodies,
a body that cannot be read (malformed chunked encoding, a client that stops sending) as a 4xx,
and JSON bodies within a nesting depth and a number length (Python's parser would otherwise
recurse until RecursionError, or refuse a 5,000-digit integer with an error nobody handles)."""

from __future__ import annotations

import io
import json

from flask import Flask, Response, request

from .errors import problem_response


class _NumberTooLong(ValueError):
    pass


class _NotJson(ValueError):
    """NaN, Infinity and -Infinity: Python's parser takes them, JSON has no such values."""


def bound_body(limit: int | None) -> Response | None:
    """Enforce the body limit on chunked requests too. With a Content-Length, Werkzeug answers
    413 itself; without one it would silently cut the body at the limit, so read it here (at
    most limit + 1 bytes) and hand the app exactly what was read."""
    if limit is None or request.content_length is not None:
        return None
    stream = request.environ["wsgi.input"]
    try:
        data = stream.read(limit + 1)
    except TimeoutError:
        return problem_response(408, "the request body was not received in time")
    except OSError:
        return problem_response(400, "the request body ended before it was complete")
    except Exception:  # the server's parser refused the chunked encoding (its own error type)
        return problem_response(400, "the request body is malformed (chunked encoding)")
    if len(data) > limit:
        return problem_response(413, f"the request body is larger than {limit} bytes")
    request.environ["wsgi.input"] = io.BytesIO(data)
    request.environ["CONTENT_LENGTH"] = str(len(data))
    request.environ.pop("HTTP_TRANSFER_ENCODING", None)
    request.environ["wsgi.input_terminated"] = False
    return None


def json_depth(value: object, limit: int) -> int:
    """How deeply arrays and objects nest in `value` (a scalar: 0), counted without recursion
    and only until past `limit`."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_body(max_depth: int, max_number: int) -> Response | None:
    """A 400 problem for a JSON body nested deeper than `max_depth` or with a number longer than
    `max_number` characters; None otherwise (a body that is not JSON at all is left to the
    view's parser, which says so)."""
    if not request.is_json:
        return None
    data = request.get_data(cache=True)
    if not data:
        return None

    def number(text: str) -> str:
        if len(text) > max_number:
            raise _NumberTooLong
        return text

    def constant(name: str) -> None:
        raise _NotJson(name)

    try:
        value = json.loads(data, parse_int=number, parse_float=number, parse_constant=constant)
    except _NotJson as exc:
        return problem_response(400, f"the JSON body is not valid JSON: {exc} is not a JSON "
                                     "value")
    except _NumberTooLong:
        return problem_response(400, f"the JSON body has a number longer than {max_number} "
                                     "characters")
    except RecursionError:
        return problem_response(400, f"the JSON body nests arrays and objects deeper than "
                                     f"{max_depth} levels")
    except ValueError:
        return None
    if json_depth(value, max_depth) > max_depth:
        return problem_response(400, f"the JSON body nests arrays and objects deeper than "
                                     f"{max_depth} levels")
    return None


def init_app(app: Flask) -> None:
    """JSON bodies are checked after the key and the rate limit (a refused body counts)."""

    @app.before_request
    def check_json():
        if request.method in ("POST", "PUT", "PATCH"):
            return check_json_body(app.config["MAX_JSON_DEPTH"],
                                   app.config["MAX_JSON_NUMBER_LENGTH"])
        return None
