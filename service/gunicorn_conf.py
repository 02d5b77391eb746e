"""gunicorn settings for `snippets serve`; command-line flags override these."""

import gunicorn.http.wsgi

# A private name: gunicorn reads this module's public names as its settings.
from service.config import Config as _Config

wsgi_app = "service:create_app()"
bind = _Config.BIND
workers = _Config.WORKERS
# Threaded workers: a connection holds one of `threads` threads while its request is read
# (at most SNIPPETS_READ_TIMEOUT seconds, see service/gunicorn_worker.py) and answered, so
# slow clients take threads, not workers. Kept-alive connections wait in the worker's poller
# without a thread, up to worker_connections per worker.
worker_class = "service.gunicorn_worker.SnippetsWorker"
threads = _Config.THREADS
worker_connections = 1000
timeout = _Config.WORKER_TIMEOUT
graceful_timeout = 20
keepalive = 5
# The app writes one JSON line per request (method, path without query string, status,
# latency, request id), so gunicorn's own access log stays off to avoid a second, text line;
# SnippetsLogger writes gunicorn's error log as JSON lines without request content.
accesslog = None
logger_class = "service.gunicorn_worker.SnippetsLogger"
# Request-line and header limits: longer requests get a problem+json 414 or 431 from the
# worker (SnippetsWorker.handle_error), never reach the app.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
errorlog = "-"
proc_name = "snippets"

# Do not advertise the server software: gunicorn reads this module global for its Server header.
gunicorn.http.wsgi.SERVER = "snippets"
