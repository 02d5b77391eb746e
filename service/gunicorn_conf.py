"""gunicorn settings for `snippets serve`; command-line flags override these."""

import os

import gunicorn.http.wsgi

wsgi_app = "service:create_app()"
bind = os.environ.get("SNIPPETS_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("SNIPPETS_WORKERS", "2"))
# A search is CPU-bound and short; a worker stuck longer than this is restarted.
timeout = int(os.environ.get("SNIPPETS_WORKER_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# The app writes one JSON line per request (method, path without query string, status,
# latency, request id), so gunicorn's own access log stays off to avoid a second, text line.
accesslog = None
# Request-line and header limits: longer requests get a 4xx from gunicorn, never reach the app.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
errorlog = "-"
proc_name = "snippets"

# Do not advertise the server software: gunicorn reads this module global for its Server header.
gunicorn.http.wsgi.SERVER = "snippets"
