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
# Access log: method, path without the query string (it may carry clinical text), status,
# response size, latency in microseconds. No bodies, no query strings, no headers.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(D)sus'
errorlog = "-"
proc_name = "snippets"

# Do not advertise the server software: gunicorn reads this module global for its Server header.
gunicorn.http.wsgi.SERVER = "snippets"
