"""Configuration from environment variables; every variable is listed in the README table."""

from __future__ import annotations

import os
from typing import Any


class Env:
    """A setting read from its environment variable when it is looked up, so the CLI's defaults
    and gunicorn's config module see the environment they run in; create_app copies it once.
    An integer default makes it an integer setting."""

    def __init__(self, variable: str, default: Any, *, empty_is_default: bool = True):
        self.variable = variable
        self.default = default
        # Where an empty value means something ("" turns rate limits off), it is kept.
        self.empty_is_default = empty_is_default

    def __get__(self, instance: object, owner: type) -> Any:
        value = os.environ.get(self.variable)
        if value is None or (value == "" and self.empty_is_default):
            return self.default
        if isinstance(self.default, int):
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"environment variable {self.variable} must be an integer, "
                                 f"got {value!r}") from None
        return value


class Config:
    """Settings from the environment (see Env); tests subclass or pass a dict."""

    # Where index generations and the CURRENT pointer live.
    INDEX_DIR = Env("SNIPPETS_INDEX_DIR", "var/index")
    # Seeds that `snippets serve` builds from when there is no index yet.
    SEEDS_DIR = Env("SNIPPETS_SEEDS_DIR", "seeds")
    # Longest `q` accepted, in characters, and most values of one repeatable parameter.
    MAX_QUERY_LENGTH = Env("SNIPPETS_MAX_QUERY_LENGTH", 500)
    MAX_REPEATED = Env("SNIPPETS_MAX_REPEATED", 20)
    LOG_LEVEL = Env("SNIPPETS_LOG_LEVEL", "INFO")
    # Megabytes of answers kept per worker for repeated GETs (keyed by generation, path,
    # normalised parameters and media type); 0 turns it off.
    RESPONSE_CACHE_MB = Env("SNIPPETS_RESPONSE_CACHE_MB", 8)
    # Largest request body (CDS Hooks POSTs), in bytes; larger gets 413.
    MAX_CONTENT_LENGTH = Env("SNIPPETS_MAX_BODY_BYTES", 1_000_000)
    # JSON bodies: deepest nesting of arrays and objects, longest number (in characters).
    MAX_JSON_DEPTH = Env("SNIPPETS_MAX_JSON_DEPTH", 32)
    MAX_JSON_NUMBER_LENGTH = Env("SNIPPETS_MAX_JSON_NUMBER_LENGTH", 40)

    # Comma-separated SHA-256 hex digests of the accepted API keys; empty: the API is open.
    API_KEYS = Env("SNIPPETS_API_KEYS", "", empty_is_default=False)
    # Requests allowed per key (or per client address without keys); "off" disables. 6000 a
    # minute is 100 a second: one portal backend at 50 a second stays under it with room.
    RATE_LIMIT = Env("SNIPPETS_RATE_LIMIT", "6000 per minute", empty_is_default=False)
    # Where rate-limit counters live: memory:// (per worker) or redis://host:port for replicas.
    RATE_LIMIT_STORAGE = Env("SNIPPETS_RATE_LIMIT_STORAGE", "memory://", empty_is_default=False)
    # Connect and read timeout for that storage, in milliseconds: past it, the worker counts in
    # its own memory (fails open) until the storage answers again.
    RATE_LIMIT_STORAGE_TIMEOUT_MS = Env("SNIPPETS_RATE_LIMIT_STORAGE_TIMEOUT_MS", 250)
    # Comma-separated origins allowed by CORS (portal front ends); empty: none.
    CORS_ORIGINS = Env("SNIPPETS_CORS_ORIGINS", "", empty_is_default=False)
    # Number of trusted reverse proxies in front (for the client address); 0: none.
    PROXY_COUNT = Env("SNIPPETS_PROXY_COUNT", 0)

    # gunicorn, for `snippets serve` and gunicorn's config module (service/gunicorn_conf.py).
    BIND = Env("SNIPPETS_BIND", "127.0.0.1:8000")
    WORKERS = Env("SNIPPETS_WORKERS", 2)
    # Threads per worker (gunicorn's gthread worker): each holds one connection while it reads
    # a request and answers it, so slow clients take threads, not whole workers.
    THREADS = Env("SNIPPETS_THREADS", 16)
    # Seconds a thread waits for one request's headers and body before dropping the connection.
    READ_TIMEOUT = Env("SNIPPETS_READ_TIMEOUT", 10)
    # A search is CPU-bound and short; a worker stuck longer than this is restarted.
    WORKER_TIMEOUT = Env("SNIPPETS_WORKER_TIMEOUT", 30)

    # EHR integration (Infobutton, CDS Hooks): the base URL clients use, from which every
    # absolute link is built (never from the Host header); empty: http://<SNIPPETS_BIND>.
    PUBLIC_URL = Env("SNIPPETS_PUBLIC_URL", "")
    # Comma-separated trusted CDS Client issuers (JWT `iss`); empty: the hooks are open.
    CDS_ISSUERS = Env("SNIPPETS_CDS_ISSUERS", "", empty_is_default=False)
    # The JWK Set whose keys may sign CDS Client JWTs: a file path or an https URL.
    CDS_JWKS = Env("SNIPPETS_CDS_JWKS", "")
    # Where the service keeps its own small state (CDS Hooks feedback counts, SQLite).
    DATA_DIR = Env("SNIPPETS_DATA_DIR", "var/data")

    # flask-smorest / OpenAPI.
    API_TITLE = "Patient-education snippets API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.1.0"
    # We serve the spec ourselves at /openapi.yaml and render it at /docs (no CDN assets).
    OPENAPI_URL_PREFIX = None
