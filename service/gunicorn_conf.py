"""gunicorn settings for `snippets serve`; command-line flags override these."""

import gunicorn.http.wsgi

# A private name: gunicorn reads this module's public names as its settings.
from service.config import Config as _Config

wsgi_app = "service:create_app()"
bind = _Config.BIND
workers = _Config.WORKERS
timeout = _Config.WORKER_TIMEOUT
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
