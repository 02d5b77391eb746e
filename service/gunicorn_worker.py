"""gunicorn's threaded worker and logger as `snippets serve` runs them (service/gunicorn_conf.py
names both through gunicorn's `worker_class` and `logger_class` settings).

SnippetsWorker is gunicorn's gthread worker with two changes:

- every blocking read of one request (its headers and its body) shares one deadline,
  SNIPPETS_READ_TIMEOUT seconds from when a thread takes the connection, so a client that
  dribbles its headers holds one thread for at most that long, never a whole worker;
- a request gunicorn itself refuses (request line or headers too long, too many headers, a
  malformed request line, header or chunked body) is answered with a problem+json body like
  every other error of the service, not gunicorn's HTML page, and nothing of the request (its
  line, query or headers) is logged.

SnippetsLogger writes gunicorn's error log as the service's JSON lines and never writes what a
request carried: gunicorn's own access log is off (the app writes one JSON line per request),
and a message's arguments are kept only where they are numbers (pids, signals) or gunicorn's
start-up values; anything else (a URI, an exception quoting a request line) is replaced by its
type. Exceptions are logged by type and place, not message (JsonLineFormatter).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from http import HTTPStatus

from gunicorn.glogging import Logger
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import ThreadWorker

from .config import Config
from .errors import PROBLEM_JSON
from .security import JsonLineFormatter

# gunicorn's refusals, by exception class: status and what the problem's detail says. The
# exception's own text is never used: it quotes the request line or header.
_REFUSALS: list[tuple[type[Exception], int, str]] = [
    (http_errors.LimitRequestLine, 414, "the request line (path and query string) is longer "
                                        "than this server accepts"),
    (http_errors.LimitRequestHeaders, 431, "the request has more header fields, or a longer "
                                           "header field, than this server accepts"),
    (http_errors.UnsupportedTransferCoding, 501, "the request's transfer coding is not "
                                                 "supported"),
    (http_errors.ExpectationFailed, 417, "the request's Expect header cannot be met"),
    (http_errors.ForbiddenProxyRequest, 403, "proxy requests are not accepted"),
    (http_errors.InvalidChunkSize, 400, "the chunked request body is malformed"),
    (http_errors.ChunkMissingTerminator, 400, "the chunked request body is malformed"),
    (http_errors.InvalidChunkExtension, 400, "the chunked request body is malformed"),
    (http_errors.InvalidRequestLine, 400, "the request line is malformed"),
    (http_errors.InvalidRequestMethod, 400, "the request method is malformed"),
    (http_errors.InvalidHTTPVersion, 400, "the HTTP version is not supported"),
    (http_errors.ParseException, 400, "the request is malformed"),
]
_APP_FAULTS = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName,
               http_errors.ConfigurationProblem)

log = logging.getLogger("service.http")


def problem_bytes(status: int, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying a problem+json body; the connection closes."""
    phrase = HTTPStatus(status).phrase
    body = json.dumps({"type": "about:blank", "title": phrase, "status": status,
                       "detail": detail}).encode()
    head = (f"HTTP/1.1 {status} {phrase}\r\nConnection: close\r\n"
            f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n"
            "X-Content-Type-Options: nosniff\r\nServer: snippets\r\n\r\n")
    return head.encode("latin-1") + body


def refusal(exc: BaseException) -> tuple[int, str]:
    """(status, detail) for an exception gunicorn raised while reading a request."""
    if isinstance(exc, _APP_FAULTS):
        return 500, "the server could not answer this request"
    for kind, status, detail in _REFUSALS:
        if isinstance(exc, kind):
            return status, detail
    return 500, "the server could not answer this request"


class DeadlineSocket(socket.socket):
    """A client connection whose blocking reads of one request share one deadline.

    gthread makes the socket blocking when a thread takes the connection (once per request);
    that starts the deadline. Each read then waits at most what is left of it (or less, when
    gunicorn asked for less); writes wait at most the read timeout each. Once the connection is
    being closed (its write side shut), reads take only what has already arrived: gunicorn
    drains a closing connection on its main thread, which a client that keeps dribbling bytes
    would otherwise hold for seconds, delaying every other connection of the worker."""

    read_timeout = 10.0
    deadline: float | None = None
    closing = False

    @classmethod
    def adopt(cls, sock: socket.socket, read_timeout: float) -> DeadlineSocket:
        bounded = cls(sock.family, sock.type, sock.proto, fileno=sock.detach())
        bounded.read_timeout = read_timeout
        bounded.deadline = None
        bounded.closing = False
        return bounded

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.deadline = time.monotonic() + self.read_timeout
            self.settimeout(self.read_timeout)
        else:
            self.deadline = None
            super().setblocking(False)

    def shutdown(self, how: int) -> None:
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self.closing = True
        super().shutdown(how)

    def _bound(self) -> None:
        if self.closing:
            self.settimeout(0.0)  # what has arrived, or BlockingIOError: the drain stops
            return
        if self.deadline is None:
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request was not received within the read timeout")
        current = self.gettimeout()
        self.settimeout(left if not current else min(left, current))

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._bound()
        return super().recv(bufsize, flags)

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        self._bound()
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data, flags: int = 0) -> None:
        if self.deadline is not None:
            self.settimeout(self.read_timeout)
        return super().sendall(data, flags)


class SnippetsWorker(ThreadWorker):
    """gthread with a per-request read deadline and problem+json refusals (see module doc)."""

    def enqueue_req(self, conn):
        # A new connection, before its first request is read: bound its reads.
        if not isinstance(conn.sock, DeadlineSocket):
            conn.sock = DeadlineSocket.adopt(conn.sock, float(Config.READ_TIMEOUT))
        super().enqueue_req(conn)

    def handle_error(self, req, client, addr, exc):
        status, detail = refusal(exc)
        if status >= 500:
            # Type and place only (JsonLineFormatter): the message may quote the request.
            log.error("error handling a request: %s", type(exc).__name__,
                      exc_info=(type(exc), exc, exc.__traceback__))
        else:
            log.info("request refused by the HTTP parser: %s %d", type(exc).__name__,
                     status)
        try:
            client.sendall(problem_bytes(status, detail))
        except OSError:
            pass  # the client is gone; nothing to answer


# Templates whose string arguments are gunicorn's own start-up values, not request data.
_TRUSTED_TEMPLATES = frozenset({
    "Starting gunicorn %s", "Listening at: %s (%s)", "Listening at: %s", "Using worker: %s",
    "Handling signal: %s", "Shutting down: %s", "Hang up: %s", "Ignoring unknown signal: %s",
    "Unhandled signal: %s", "Reason: %s", "Worker (pid:%s) was sent %s!",
    "Worker (pid:%s) was sent %s! Perhaps out of memory?",
})


def scrub(msg: object, args: tuple) -> str:
    """The message gunicorn logs, without anything a request may have carried."""
    if not isinstance(msg, str):  # log.exception(exc): the exception's type, not its text
        return type(msg).__name__
    if not args:
        return msg
    if msg in _TRUSTED_TEMPLATES or all(isinstance(a, int | float) for a in args):
        try:
            return msg % args
        except (TypeError, ValueError):
            return msg
    try:
        return msg % tuple(a if isinstance(a, int | float) else f"<{type(a).__name__}>"
                           for a in args)
    except (TypeError, ValueError):
        return msg


class ScrubFilter(logging.Filter):
    """Rewrites each record's message with scrub() before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.msg, record.args if isinstance(record.args, tuple) else
                           (record.args,) if record.args else ())
        record.args = ()
        return True


class SnippetsLogger(Logger):
    """gunicorn's logger, writing JSON lines without request content (see module doc)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonLineFormatter())
            handler.addFilter(ScrubFilter())
        # gunicorn's module loggers (gunicorn.http.wsgi) write where its error log writes.
        parent = logging.getLogger("gunicorn")
        parent.propagate = False
        for handler in list(parent.handlers):
            if getattr(handler, "_snippets", False):
                parent.removeHandler(handler)
        streams = [h.stream for h in self.error_log.handlers if hasattr(h, "stream")]
        if streams:
            shared = logging.StreamHandler(streams[0])
            shared.setFormatter(JsonLineFormatter())
            shared.addFilter(ScrubFilter())
            shared._snippets = True  # type: ignore[attr-defined]
            parent.addHandler(shared)

    def access(self, resp, req, environ, request_time):
        """Never: the app writes one JSON access line per request, without the query string;
        gunicorn's line would carry the request line (%(r)s) and headers."""
