"""One error shape for every 4xx and 5xx: application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Response, json
from flask_smorest import abort
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("service.errors")


def problem_response(status: int, detail: str | None = None,
                     errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail or HTTPStatus(status).description,
    }
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(name: str, problems: Any) -> list[tuple[str, str]]:
    """Nested marshmallow errors as (dotted field name, message): context.patientId, not context.
    List positions and a nested object's own errors are reported under the field's name."""
    if isinstance(problems, dict):
        found = []
        for key, inner in problems.items():
            if isinstance(key, int) or (key == "_schema" and name):
                child = name  # a list position, or the nested object itself
            else:
                child = f"{name}.{key}" if name else str(key)
            found += _flatten(child, inner)
        return found
    if isinstance(problems, list | tuple):
        if all(isinstance(p, str) for p in problems):
            return [(name, " ".join(problems))]
        return [f for p in problems for f in _flatten(name, p)]
    return [(name, str(problems))]


def _field_errors(messages: Any) -> list[dict[str, str]]:
    """webargs' {location: {field: [messages]}} as a flat list a client can show per field."""
    errors = []
    if not isinstance(messages, dict):
        return errors
    for location, fields in messages.items():
        if not isinstance(fields, dict):
            errors.append({"location": "body", "parameter": str(location),
                           "detail": " ".join(map(str, fields))})
            continue
        merged: dict[str, list[str]] = {}
        for name, detail in _flatten("", fields):
            merged.setdefault(name, []).append(detail)
        errors += [{"location": location, "parameter": name, "detail": " ".join(details)}
                   for name, details in merged.items()]
    return errors


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") if isinstance(data.get("errors"), list) else \
        _field_errors(data.get("errors") or data.get("messages"))
    detail = data.get("message")
    if detail is None and errors:
        detail = "; ".join(f"{e['parameter']}: {e['detail']}" for e in errors)
    if detail is None:
        detail = error.description
    headers = dict(error.get_headers()) if status == 405 else {}
    headers.pop("Content-Type", None)
    headers.update(data.get("headers") or {})
    if status >= 500:
        original = getattr(error, "original_exception", None)
        if original is not None:
            log.error("unhandled error: %s", type(original).__name__, exc_info=original)
    return problem_response(status, detail, errors or None, headers)


def bad_parameter(parameter: str, detail: str, status: int = 400, location: str = "query"):
    """Abort with a field error naming the parameter that was wrong and why."""
    abort(status, message=f"{parameter}: {detail}",
          errors=[{"location": location, "parameter": parameter, "detail": detail}])
