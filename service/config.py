"""Configuration from environment variables; every variable is listed in the README table."""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


class Config:
    """Settings read once, when the class body runs; tests subclass or pass a dict."""

    # Where index generations and the CURRENT pointer live.
    INDEX_DIR = os.environ.get("SNIPPETS_INDEX_DIR") or "var/index"
    # Seeds that `snippets serve` builds from when there is no index yet.
    SEEDS_DIR = os.environ.get("SNIPPETS_SEEDS_DIR") or "seeds"
    # Longest `q` accepted, in characters, and most values of one repeatable parameter.
    MAX_QUERY_LENGTH = _int("SNIPPETS_MAX_QUERY_LENGTH", 500)
    MAX_REPEATED = _int("SNIPPETS_MAX_REPEATED", 20)
    LOG_LEVEL = os.environ.get("SNIPPETS_LOG_LEVEL") or "INFO"
    # Answers kept per worker for repeated GETs (by generation and URL); 0 turns it off.
    RESPONSE_CACHE_SIZE = _int("SNIPPETS_RESPONSE_CACHE_SIZE", 1024)
    # Largest request body (CDS Hooks POSTs), in bytes; larger gets 413.
    MAX_CONTENT_LENGTH = _int("SNIPPETS_MAX_BODY_BYTES", 1_000_000)

    # Comma-separated SHA-256 hex digests of the accepted API keys; empty: the API is open.
    API_KEYS = os.environ.get("SNIPPETS_API_KEYS", "")
    # Requests allowed per key (or per client address without keys); "off" disables.
    RATE_LIMIT = os.environ.get("SNIPPETS_RATE_LIMIT", "600 per minute")
    # Where rate-limit counters live: memory:// (per worker) or redis://host:port for replicas.
    RATE_LIMIT_STORAGE = os.environ.get("SNIPPETS_RATE_LIMIT_STORAGE", "memory://")
    # Comma-separated origins allowed by CORS (portal front ends); empty: none.
    CORS_ORIGINS = os.environ.get("SNIPPETS_CORS_ORIGINS", "")
    # Number of trusted reverse proxies in front (for the client address); 0: none.
    PROXY_COUNT = _int("SNIPPETS_PROXY_COUNT", 0)

    # flask-smorest / OpenAPI.
    API_TITLE = "Patient-education snippets API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.1.0"
    # We serve the spec ourselves at /openapi.yaml and render it at /docs (no CDN assets).
    OPENAPI_URL_PREFIX = None
