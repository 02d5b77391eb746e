"""API keys, request ids, access logs, security headers, CORS and request bodies (rate limits:
ratelimit.py).

Everything here runs on every request, so it stays small: one hash per key check, one JSON log
line per request. What a request carries (query text, bodies, keys) never reaches a log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from .bodies import bound_body
from .errors import problem_response

access_log = logging.getLogger("service.access")
log = logging.getLogger("service")

# Open without a key: probes, the spec and its rendering (with Swagger UI's files), and the
# pages' stylesheets. The pages themselves show index content: keyed like the API.
OPEN_ENDPOINTS = {"health.Health", "health.Ready", "docs.openapi_yaml", "docs.openapi_json",
                  "docs.docs_page", "docs.static", "docs.swagger_ui_file", "pages.static"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Pages for people (/docs with Swagger UI, the clinician pages, the handout): scripts, styles,
# images and requests from this server only (Swagger UI's stylesheet inlines its icons as data:
# URIs); forms submit here only.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# CDS Hooks calls are authenticated the CDS Hooks way (a CDS Client JWT, service/cds_auth.py):
# API keys never apply to them, as no EHR sends one.
CDS_HOOKS_PREFIX = "/cds-services"



def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _exempt() -> bool:
    return request.endpoint in OPEN_ENDPOINTS or request.method == "OPTIONS"


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-API-Key") or None


def _key_matches(presented: str, hashes: tuple[str, ...]) -> str | None:
    """The matching configured hash, compared in constant time against every hash."""
    digest = hash_key(presented)
    found = None
    for known in hashes:
        if hmac.compare_digest(digest, known):
            found = known
    return found


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
                "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and where it happened; not its message, which may quote data.
            line["error"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                line["at"] = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        return json.dumps(line, ensure_ascii=False)


def _configure_logging(level: str) -> None:
    service_log = logging.getLogger("service")
    if not any(getattr(h, "_snippets", False) for h in service_log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
        handler._snippets = True  # type: ignore[attr-defined]
        service_log.addHandler(handler)
        service_log.propagate = False
    service_log.setLevel(level)


def init_app(app: Flask) -> None:
    _configure_logging(app.config["LOG_LEVEL"])
    if app.config["PROXY_COUNT"]:
        # Behind N trusted proxies, the client address comes from X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"],
                                x_proto=app.config["PROXY_COUNT"],
                                x_host=app.config["PROXY_COUNT"])
    hashes = tuple(h.strip().lower() for h in app.config["API_KEYS"].split(",") if h.strip())
    bad = [h for h in hashes if not re.fullmatch(r"[0-9a-f]{64}", h)]
    if bad:
        raise ValueError("SNIPPETS_API_KEYS must hold SHA-256 hex digests of the keys "
                         "(see `snippets api-key`), not the keys themselves")
    if hashes:
        log.info("API keys required: %d configured", len(hashes))
    else:
        log.warning("SNIPPETS_API_KEYS is not set: the API is open to anyone who can reach it")
    origins = [o.strip() for o in app.config["CORS_ORIGINS"].split(",") if o.strip()]
    if origins:
        CORS(app, origins=origins, allow_headers=["Authorization", "X-API-Key", "Content-Type",
                                                  "X-Request-ID"],
             expose_headers=["X-Request-ID", "Retry-After", "X-RateLimit-Limit",
                             "X-RateLimit-Remaining", "X-RateLimit-Reset"], max_age=600)
    @app.before_request
    def start_request():
        g.started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        # A chunked body is read (and checked) here whatever the method: a malformed one is a
        # 400 problem before any view, not an error after the answer.
        if request.method in ("POST", "PUT", "PATCH") or "HTTP_TRANSFER_ENCODING" in \
                request.environ:
            too_large = bound_body(app.config["MAX_CONTENT_LENGTH"])
            if too_large is not None:
                return too_large
        if not hashes or _exempt() or request.path.startswith(CDS_HOOKS_PREFIX):
            return None
        presented = _presented_key()
        matched = _key_matches(presented, hashes) if presented else None
        if matched is None:
            detail = ("an API key is required: send Authorization: Bearer <key> or X-API-Key"
                      if presented is None else "the API key is not valid")
            return problem_response(401, detail, headers={
                "WWW-Authenticate": 'Bearer realm="snippets"'})
        g.rate_key = f"key:{matched[:16]}"
        return None

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        if origins:
            # The CORS headers depend on the Origin asked from, also with one origin allowed.
            response.vary.add("Origin")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault(
            "Content-Security-Policy",
            PAGE_CSP if request.blueprint in ("docs", "pages") else API_CSP)
        started = g.get("started")
        access_log.info("request", extra={"fields": {
            "method": request.method,
            "path": request.path,  # never the query string: it may carry clinical text
            "status": response.status_code,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "request_id": g.get("request_id"),
        }})
        return response
