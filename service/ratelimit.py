"""Rate limits: one budget per API key (or per client address without keys) across the API,
counted in SNIPPETS_RATE_LIMIT_STORAGE, with flask-limiter.

Redis is not a single point of failure: its connect and read timeouts are short
(SNIPPETS_RATE_LIMIT_STORAGE_TIMEOUT_MS); when it fails, flask-limiter's in-memory fallback
counts in the worker's memory (fail open, the same limit per worker) and goes back to Redis
when it answers again, checking at growing intervals. The switch is logged once each way, not
per request, and /readyz reports it (storage_status()).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem

from .security import OPEN_ENDPOINTS, JsonLineFormatter

log = logging.getLogger("service.ratelimit")
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _rate_key() -> str:
    # Per API key when keys are in use, else per client address.
    return g.get("rate_key") or request.remote_addr or "unknown"


def _exempt() -> bool:
    return request.endpoint in OPEN_ENDPOINTS or request.method == "OPTIONS"


def in_words(item: RateLimitItem) -> str:
    """`6000 requests per minute`, `10 requests per 5 seconds`."""
    unit = item.GRANULARITY.name
    per = f"{item.multiples} {unit}s" if item.multiples != 1 else unit
    return f"{item.amount} request{'s' if item.amount != 1 else ''} per {per}"


def exceeded_detail(error: RateLimitExceeded) -> str:
    who = "this API key" if g.get("rate_key") else "this client address"
    return (f"too many requests: the limit is {in_words(error.limit.limit)} for {who}; "
            "retry after the number of seconds in Retry-After")


def _storage_options(app: Flask) -> dict:
    uri = app.config["RATE_LIMIT_STORAGE"]
    if not uri.startswith(("redis://", "rediss://", "unix://")):
        return {}
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    seconds = app.config["RATE_LIMIT_STORAGE_TIMEOUT_MS"] / 1000
    # One try per call: a retry would multiply the wait of every request while Redis is down.
    return {"socket_connect_timeout": seconds, "socket_timeout": seconds,
            "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}


def _headers(response: Response) -> Response:
    """X-RateLimit-* on limited answers, Retry-After only on a 429 (flask-limiter would send
    it on every answer)."""
    limiter: Limiter = current_app.extensions["snippets_limiter"]
    current = limiter.current_limit
    if current is None:
        return response
    try:
        reset = int(current.reset_at)
    except Exception:  # the storage failed while answering; the request itself was counted
        return response
    response.headers["X-RateLimit-Limit"] = str(current.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(current.remaining)
    response.headers["X-RateLimit-Reset"] = str(reset)
    if response.status_code == 429:
        wait = math.ceil(current.reset_at - time.time())
        response.headers["Retry-After"] = str(min(max(1, wait), current.limit.get_expiry()))
    return response


class _OutagesOnly(logging.Filter):
    """flask-limiter's lines about its storage, once per outage and worker: "falling back to
    in-memory storage" (several threads waiting on a hung Redis all time out together, and each
    says so) until "recovered". Not its line per refused request (the access log has those, as
    429s), nor one per request that was already talking to the storage when another thread
    switched to memory (swallowed and let through: the same outage)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._down = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if "exceeded at endpoint" in message or "Swallowing error" in message:
            return False
        with self._lock:
            if "falling back" in message:
                if self._down:
                    return False
                self._down = True
            elif "recovered" in message:
                self._down = False
        return True


def _log_fallback_in_json() -> None:
    """flask-limiter says when it falls back to memory and when the storage recovers, once
    each per worker, on its own logger: write those as the service's JSON lines."""
    limiter_log = logging.getLogger("flask-limiter")
    if not any(getattr(h, "_snippets", False) for h in limiter_log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLineFormatter())
        handler.addFilter(_OutagesOnly())
        handler._snippets = True  # type: ignore[attr-defined]
        limiter_log.addHandler(handler)
        limiter_log.propagate = False
    limiter_log.setLevel(logging.INFO)


def storage_status(app: Flask) -> str:
    """`ok`, `off`, or `degraded` when the shared storage does not answer (limits are then
    counted per worker). One PING, within the storage timeout."""
    limiter: Limiter | None = app.extensions.get("snippets_limiter")
    if limiter is None or not limiter.enabled:
        return "off"
    if app.config["RATE_LIMIT_STORAGE"].startswith("memory://"):
        return "ok"
    try:
        return "ok" if limiter.storage.check() else "degraded"
    except Exception:
        return "degraded"


def init_app(app: Flask) -> None:
    # Created after the key check hooks (security.init_app), so its check runs after the key
    # is known (limits are per key). One limiter per app, not per module: its counters live in
    # the limiter, and two apps (tests, or two configurations) must not share them.
    enabled = app.config["RATE_LIMIT"].strip().lower() not in ("", "off")
    _log_fallback_in_json()
    # An application limit is one budget across every endpoint (a default limit would give
    # each endpoint its own).
    limiter = Limiter(key_func=_rate_key, app=app, headers_enabled=False, enabled=enabled,
                      application_limits=[app.config["RATE_LIMIT"]] if enabled else [],
                      storage_uri=app.config["RATE_LIMIT_STORAGE"],
                      storage_options=_storage_options(app),
                      in_memory_fallback_enabled=True,
                      # Threads share the limiter: a request that hits the storage error
                      # after another thread switched to memory is let through, not a 500.
                      swallow_errors=True,
                      application_limits_exempt_when=_exempt)
    app.extensions["snippets_limiter"] = limiter
    app.after_request(_headers)
