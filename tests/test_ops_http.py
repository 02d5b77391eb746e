"""Operations over a real `snippets serve` (gunicorn, its default worker class and threads):
slow clients, requests gunicorn itself refuses, malformed bodies, and what reaches the logs.
Raw sockets, so every byte on the wire is the test's. SNIPPETS_TEST_SKIP_SERVER=1 skips them.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest
from server_helpers import SKIP_SERVER, Server

pytestmark = pytest.mark.skipif(SKIP_SERVER, reason="SNIPPETS_TEST_SKIP_SERVER=1")

PROBLEM_JSON = "application/problem+json"
HOOK = "/cds-services/patient-education"
# Patient words a request may carry: none may reach any log.
MARKER = "suicidalJaneRoe" + uuid.uuid4().hex[:8]
READ_TIMEOUT = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory, built_index):
    tmp = tmp_path_factory.mktemp("ops-http")
    # The defaults of `snippets serve` (2 workers, their threads), with a shorter read timeout
    # so the test sees slow clients cut off.
    with Server(built_index, tmp / "server.log",
                env={"SNIPPETS_RATE_LIMIT": "off", "SNIPPETS_MAX_BODY_BYTES": "250000",
                     "SNIPPETS_READ_TIMEOUT": str(READ_TIMEOUT)}) as srv:
        yield srv


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send `data` on a new connection; the first response's status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(status_line.split()[1]), headers, body


def get(port: int, target: str, extra: str = "") -> bytes:
    return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n"
            .encode())


def test_slow_clients_do_not_starve_others(server):
    """Twelve connections dribbling their headers a byte at a time (more than the 8 the
    service must survive): others are answered at once meanwhile, and the slow ones are cut
    off at the read timeout instead of holding their threads."""
    slow = []
    for _ in range(12):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET /v1/sources HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        slow.append(sock)
    stop = threading.Event()

    def dribble():
        while not stop.is_set():
            for sock in slow:
                try:
                    sock.sendall(b"x")
                except OSError:
                    pass
            stop.wait(0.25)

    dribbler = threading.Thread(target=dribble)
    dribbler.start()
    try:
        time.sleep(0.5)  # every slow client holds its connection
        latencies, statuses = [], []
        until = time.monotonic() + READ_TIMEOUT + 1.5
        while time.monotonic() < until:
            started = time.monotonic()
            statuses.append(exchange(server.port, get(server.port, "/v1/snippets?q=sleep"),
                                     timeout=5)[0])
            latencies.append(time.monotonic() - started)
        assert set(statuses) == {200} and len(statuses) > 20, statuses
        assert max(latencies) < 1.0, max(latencies)
    finally:
        stop.set()
        dribbler.join()
    # Past the read timeout the server has dropped every slow connection, without answering.
    for sock in slow:
        sock.settimeout(3)
        try:
            assert sock.recv(100) == b""
        except ConnectionResetError:
            pass
        sock.close()


REFUSED = {
    "request line too long": (get(0, f"/v1/snippets?q={MARKER}{'a' * 10_000}"), 414),
    "header too long": (get(0, "/healthz", f"X-Note: {MARKER}{'b' * 9000}\r\n"), 431),
    "too many headers": (get(0, "/healthz", "".join(f"X-{i}: {MARKER}\r\n" for i in range(101))),
                         431),
    "malformed request line": (f"GET /v1/snippets?q={MARKER} HTTP/1.1 x\r\n\r\n".encode(), 400),
    "malformed method": (f"G(T /v1/snippets?q={MARKER} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                         400),
    "unknown HTTP version": (f"GET /v1/snippets?q={MARKER} HTTP/7.1\r\n\r\n".encode(), 400),
    "malformed header name": (get(0, f"/v1/snippets?q={MARKER}", f"Bad {MARKER}: 1\r\n"), 400),
    "obsolete line folding": (get(0, f"/healthz?q={MARKER}", f"X-A: 1\r\n {MARKER}\r\n"), 400),
    "chunked and a length": (
        f"POST {HOOK}?q={MARKER} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Length: 5\r\n\r\n0\r\n\r\n".encode(), 400),
    "malformed chunk size (POST)": (
        f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ{MARKER}\r\n{{}}\r\n0\r\n\r\n"
        .encode(), 400),
    "malformed chunk size (GET)": (
        f"GET /v1/snippets?q={MARKER} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        f"Connection: close\r\n\r\n{MARKER}\r\nxx\r\n0\r\n\r\n".encode(), 400),
    "deeply nested JSON": (
        f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: 200000\r\nConnection: close\r\n\r\n".encode()
        + b"[" * 100_000 + b"]" * 100_000, 400),
    "5,000-digit number": (
        f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: 5010\r\nConnection: close\r\n\r\n".encode()
        + b'{"hook": ' + b"7" * 5000 + b"}", 400),
    "body over the limit": (
        f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: 300000\r\nConnection: close\r\n\r\n".encode() + b" " * 300_000, 413),
    "double slash": (get(0, f"/v1//sources?q={MARKER}"), 404),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_bad_requests_get_a_4xx_problem_never_html_or_5xx(server, name):
    data, status = REFUSED[name]
    answered, headers, body = exchange(server.port, data)
    assert answered == status, body
    assert headers["content-type"] == PROBLEM_JSON
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert MARKER not in body.decode()
    assert "gunicorn" not in headers.get("server", "").lower()
    # The worker serves on.
    assert exchange(server.port, get(server.port, "/healthz"))[0] == 200


def test_options_is_204_with_allow_and_no_body(server):
    status, headers, body = exchange(server.port, (
        b"OPTIONS /v1/sources HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert status == 204 and body == b""
    assert {m.strip() for m in headers["allow"].split(",")} >= {"GET", "OPTIONS"}
    assert "content-type" not in headers


def test_no_answer_is_html_and_no_log_holds_request_content(server):
    """Everything above, then every line the server wrote (gunicorn's own log included): the
    marker the requests carried is nowhere, every line is JSON, and none is a traceback."""
    for data, _ in REFUSED.values():
        exchange(server.port, data)
    exchange(server.port, get(server.port, f"/v1/snippets?q={MARKER}",
                              f"X-Request-ID: after-{MARKER[:6]}\r\n"))
    time.sleep(0.5)
    log = server.log()
    assert MARKER not in log
    lines = [line for line in log.splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert any(r.get("logger") == "service.http" and "LimitRequestLine" in r.get("message", "")
               for r in records), "refusals are logged, by type only"
    assert not any("Traceback" in line for line in log.splitlines())
    gunicorn_lines = [r for r in records if r.get("logger", "").startswith("gunicorn")]
    assert gunicorn_lines and all("message" in r for r in gunicorn_lines)
