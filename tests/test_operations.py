"""Operations: request limits, the access log and request ids, in process and over a real
gunicorn server (`snippets serve`, one for the module; SNIPPETS_TEST_SKIP_SERVER=1 skips those).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import secrets
import socket
import sys
import time
import types
import uuid
from pathlib import Path

import pytest
import requests
from api_helpers import PROBLEM_JSON, SEEDS, SLEEP_SOURCE, assert_bad_parameter, assert_problem
from log_helpers import every_logger_captured, service_log
from server_helpers import SKIP_SERVER, Server, skip_server

from service import presenters
from service.config import Config
from service.security import JsonLineFormatter

HOOK = "/cds-services/patient-education"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
PORTAL = "https://portal.example.org"
QUERY_MARKER = "quokkaquerymarker"
PATIENT_MARKER = "PATIENT-OPS-QUOKKA-4417"
ACCESS_FIELDS = {"time", "level", "logger", "method", "path", "status", "latency_ms",
                 "request_id"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def hook_body(patient: str = PATIENT_MARKER) -> dict:
    """A valid patient-view request: one active fibromyalgia Condition (two cards)."""
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "fhirServer": "https://ehr.example.org/fhir",
            "context": {"userId": "Practitioner/1", "patientId": patient},
            "prefetch": {"conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [
                {"resource": {"resourceType": "Condition",
                              "code": {"coding": [{"system": ICD10CM, "code": "M79.7"}]},
                              "subject": {"reference": f"Patient/{patient}"}}}]}}}


def padded(body: dict, size: int) -> bytes:
    """`body` as JSON, padded with spaces to exactly `size` bytes."""
    data = json.dumps(body).encode()
    assert len(data) < size
    return data[:-1] + b" " * (size - len(data)) + b"}"


# -- limits, in process ------------------------------------------------------------------------

def test_query_longer_than_the_limit_is_400(make):
    client = make().test_client()
    longest = ("sleep " * Config.MAX_QUERY_LENGTH)[:Config.MAX_QUERY_LENGTH - 1] + "x"
    assert client.get("/v1/snippets", query_string={"q": longest}).status_code == 200
    body = assert_bad_parameter(
        client.get("/v1/snippets", query_string={"q": longest + "x"}), "q")
    assert str(Config.MAX_QUERY_LENGTH) in body["detail"]


@pytest.mark.parametrize(("parameter", "value"), [
    ("condition", "fibromyalgia"), ("code", "icd10cm|M79.7"), ("source", SLEEP_SOURCE)])
def test_more_repeated_values_than_the_limit_is_400(make, parameter, value):
    client = make().test_client()
    most = [(parameter, value)] * Config.MAX_REPEATED
    assert client.get("/v1/snippets", query_string=most).status_code == 200
    body = assert_bad_parameter(
        client.get("/v1/snippets", query_string=most + [(parameter, value)]), parameter)
    assert str(Config.MAX_REPEATED) in body["detail"]


def test_query_length_limit_follows_the_app_config(make):
    client = make(MAX_QUERY_LENGTH=20).test_client()
    response = client.get("/v1/snippets", query_string={"q": "sleep " * 5})
    assert response.status_code == 400
    assert_bad_parameter(response, "q")


def test_repeat_limit_follows_the_app_config(make):
    client = make(MAX_REPEATED=2).test_client()
    response = client.get("/v1/snippets", query_string=[("condition", "fibromyalgia")] * 3)
    assert response.status_code == 400
    assert_bad_parameter(response, "condition")


def test_body_over_max_content_length_is_a_413_problem(make):
    client = make(MAX_CONTENT_LENGTH=2000).test_client()
    at_limit = client.post(HOOK, data=padded(hook_body(), 2000), content_type="application/json")
    assert at_limit.status_code == 200 and len(at_limit.get_json()["cards"]) == 2
    over = client.post(HOOK, data=padded(hook_body(), 2001), content_type="application/json")
    body = assert_problem(over, 413)
    assert PATIENT_MARKER not in json.dumps(body)


# -- access log and request ids, in process ----------------------------------------------------

def test_one_json_access_line_per_request(make):
    key = secrets.token_urlsafe(16)
    # One budget of 6 for the key across the whole API: the 12th request (the 7th with the key
    # that reaches a route) is over it. The CDS Hooks POST is not counted for the key: API keys
    # never apply to /cds-services.
    app = make(API_KEYS=hashlib.sha256(key.encode()).hexdigest(), RATE_LIMIT="6 per minute",
               MAX_CONTENT_LENGTH=2000, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    auth = {"X-API-Key": key}
    with service_log() as log:
        responses = [
            client.get(f"/v1/snippets?q={QUERY_MARKER}&condition=fibromyalgia", headers=auth),
            client.get("/v1/snippets?q=sleep&limit=0", headers=auth),
            client.get("/v1/snippets/nope?x=1", headers=auth),
            client.delete("/v1/snippets", headers=auth),
            client.get("/v1/sources?q=1"),
            client.options("/v1/sources"),
            client.post(HOOK, data=b" " * 3000, content_type="application/json", headers=auth),
            client.get("/healthz?probe=1"),
            client.get("/v1/caveats", headers=auth),
            client.get("/v1/caveats", headers=auth),
            client.get("/v1/caveats", headers=auth),
            client.get("/v1/caveats", headers=auth),
        ]
    assert [r.status_code for r in responses] == [200, 400, 404, 405, 401, 204, 413, 200,
                                                  200, 200, 200, 429]
    lines = log.access()
    assert len(lines) == len(responses)
    expected_paths = ["/v1/snippets", "/v1/snippets", "/v1/snippets/nope", "/v1/snippets",
                      "/v1/sources", "/v1/sources", HOOK, "/healthz"] + ["/v1/caveats"] * 4
    for line, response, path in zip(lines, responses, expected_paths, strict=True):
        assert set(line) == ACCESS_FIELDS, line
        assert line["logger"] == "service.access" and line["level"] == "info"
        assert line["method"] == response.request.method
        assert line["path"] == path and "?" not in line["path"]
        assert line["status"] == response.status_code
        assert isinstance(line["latency_ms"], int | float)
        assert not isinstance(line["latency_ms"], bool) and line["latency_ms"] >= 0
        assert line["request_id"] == response.headers["X-Request-ID"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line["time"])
    assert len({line["request_id"] for line in lines}) == len(lines)


@pytest.mark.parametrize("request_id", ["abc-123", "trace.id:42_x", "A" * 128,
                                        str(uuid.uuid4())])
def test_a_valid_request_id_is_echoed_and_logged(make, request_id):
    client = make().test_client()
    with service_log() as log:
        for path in ("/v1/sources", "/v1/nothing", "/healthz"):
            response = client.get(path, headers={"X-Request-ID": request_id})
            assert response.headers["X-Request-ID"] == request_id
    assert [line["request_id"] for line in log.access()] == [request_id] * 3


@pytest.mark.parametrize("request_id", ["has spaces", "x" * 129, "y" * 200, "<script>",
                                        "caf\u00e9", "a/b", "id;drop", ""])
def test_an_invalid_request_id_is_replaced_and_the_new_one_echoed_and_logged(make, request_id):
    client = make().test_client()
    with service_log() as log:
        response = client.get("/v1/sources", headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    generated = response.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(generated) and generated != request_id
    (line,) = log.access()
    assert line["request_id"] == generated
    if request_id:
        assert not any(request_id in text for text in log.lines)


def test_request_ids_are_generated_per_request(make):
    client = make().test_client()
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5 and all(GENERATED_ID.fullmatch(i) for i in ids)


def test_no_query_body_or_key_reaches_any_log_in_process(make, caplog):
    key = "KEYMARKER-" + secrets.token_urlsafe(16)
    app = make(API_KEYS=hashlib.sha256(key.encode()).hexdigest(), LOG_LEVEL="DEBUG",
               PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    with every_logger_captured(caplog):
        with service_log() as log:
            logging.getLogger("service").debug("capture-probe")
            statuses = [
                client.get(f"/v1/snippets?q=sleep+{QUERY_MARKER}", headers=auth).status_code,
                client.get(f"/v1/snippets?q={QUERY_MARKER}&limit=0", headers=auth).status_code,
                client.post(HOOK, json=hook_body(), headers=auth).status_code,
                client.post(HOOK, data=json.dumps(hook_body()).encode()[:-2], headers=auth,
                            content_type="application/json").status_code,
                client.get(f"/v1/snippets?q={QUERY_MARKER}").status_code,
            ]
    assert statuses == [200, 400, 200, 400, 401]
    assert "capture-probe" in caplog.text and len(log.access()) == 5
    for marker in (QUERY_MARKER, PATIENT_MARKER, key, "Practitioner/1", "ehr.example.org"):
        assert marker not in caplog.text
        assert not any(marker in line for line in log.lines)
        for record in caplog.records:
            assert marker not in record.getMessage()
            assert marker not in repr(record.args)
            assert marker not in repr(getattr(record, "fields", None))


def test_a_500_logs_the_error_type_and_place_but_not_its_message(make, monkeypatch):
    app = make(PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()

    def broken():
        raise RuntimeError(f"index exploded while reading {PATIENT_MARKER}")

    monkeypatch.setattr(presenters, "generation", broken)
    with service_log() as log:
        response = client.get(f"/v1/snippets?q={QUERY_MARKER}",
                              headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500)
    assert PATIENT_MARKER not in json.dumps(body) and "exploded" not in json.dumps(body)
    assert response.headers["X-Request-ID"] == "boom-1"
    errors = [json.loads(line) for record, line in zip(log.records, log.lines, strict=True)
              if record.levelno >= logging.ERROR]
    assert errors
    for line in errors:
        assert line["error"] == "RuntimeError"
        where, _, lineno = line["at"].rpartition(":")
        assert where == __file__ and int(lineno) > 0
    (access,) = log.access()
    assert access["status"] == 500 and access["request_id"] == "boom-1"
    for marker in (PATIENT_MARKER, "exploded", QUERY_MARKER):
        assert not any(marker in line for line in log.lines)


def test_json_formatter_keeps_exception_type_and_place_but_not_its_message():
    try:
        raise ValueError(f"cannot parse {PATIENT_MARKER}")
    except ValueError:
        exc_info = sys.exc_info()
    raised_at = exc_info[2].tb_lineno
    record = logging.LogRecord("service.errors", logging.ERROR, __file__, 1,
                               "unhandled error: %s", ("ValueError",), exc_info)
    text = JsonLineFormatter().format(record)
    assert "\n" not in text and PATIENT_MARKER not in text
    line = json.loads(text)
    assert line["message"] == "unhandled error: ValueError"
    assert line["error"] == "ValueError"
    assert line["at"] == f"{__file__}:{raised_at}"
    assert line["level"] == "error" and line["logger"] == "service.errors"
    # Structured records carry their fields instead of a message.
    fields = logging.LogRecord("service.access", logging.INFO, __file__, 1, "request", (), None)
    fields.fields = {"method": "GET", "path": "/x", "status": 200}
    parsed = json.loads(JsonLineFormatter().format(fields))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", parsed.pop("time"))
    assert parsed == {"level": "info", "logger": "service.access", "method": "GET",
                      "path": "/x", "status": 200}


# -- gunicorn configuration --------------------------------------------------------------------

@pytest.fixture
def gunicorn_conf(monkeypatch):
    import service.gunicorn_conf as conf

    monkeypatch.delenv("SNIPPETS_WORKER_TIMEOUT", raising=False)
    yield importlib.reload(conf)
    monkeypatch.delenv("SNIPPETS_WORKER_TIMEOUT", raising=False)
    importlib.reload(conf)


def test_gunicorn_config_is_sane(gunicorn_conf):
    import gunicorn.http.wsgi
    from gunicorn.config import Config as GunicornConfig

    names = [n for n, v in vars(gunicorn_conf).items()
             if not n.startswith("_") and not isinstance(v, types.ModuleType)]
    config = GunicornConfig()
    # Every name is a gunicorn setting (a misspelt one would be silently ignored) and gunicorn's
    # own validators accept every value.
    assert set(names) <= set(config.settings), set(names) - set(config.settings)
    for name in names:
        config.set(name, getattr(gunicorn_conf, name))
    assert 10 <= config.timeout <= 120
    assert 0 < config.graceful_timeout <= config.timeout
    assert 0 < config.keepalive < config.timeout
    assert gunicorn_conf.accesslog is None and config.accesslog is None
    assert config.errorlog == "-"
    # 0 would mean unlimited; gunicorn's own maximum is 8190.
    assert 0 < config.limit_request_line <= 8190
    assert 0 < config.limit_request_fields <= 100
    assert 0 < config.limit_request_field_size <= 8190
    assert "gunicorn" not in gunicorn.http.wsgi.SERVER.lower()
    assert not re.search(r"\d", gunicorn.http.wsgi.SERVER)
    # Threaded workers with a bounded pool (slow clients take threads, not workers), gunicorn's
    # refusals as problem+json and its log without request content.
    from gunicorn.glogging import Logger
    from gunicorn.workers.gthread import ThreadWorker

    assert issubclass(config.worker_class, ThreadWorker)
    assert 8 <= config.threads <= 64 and config.worker_connections > config.threads
    assert issubclass(config.logger_class, Logger)
    assert config.logger_class.__module__ == "service.gunicorn_worker"


def test_worker_timeout_follows_the_environment(gunicorn_conf, monkeypatch):
    monkeypatch.setenv("SNIPPETS_WORKER_TIMEOUT", "45")
    assert importlib.reload(gunicorn_conf).timeout == 45


# -- over a real gunicorn server ---------------------------------------------------------------

SERVER_KEY = "SERVERKEY-" + secrets.token_urlsafe(24)
SERVER_ENV = {
    "SNIPPETS_API_KEYS": hashlib.sha256(SERVER_KEY.encode()).hexdigest(),
    "SNIPPETS_MAX_BODY_BYTES": "2000",
    "SNIPPETS_MAX_QUERY_LENGTH": "100",
    "SNIPPETS_MAX_REPEATED": "3",
    "SNIPPETS_CORS_ORIGINS": PORTAL,
}


class LiveServer(Server):
    """`snippets serve` (one gunicorn worker) over the test index, configured by SERVER_ENV,
    sending the server's key; stdout+stderr to a file."""

    def __init__(self, tmp: Path, index_dir: Path):
        self.cwd = tmp / "cwd"
        self.cwd.mkdir()
        super().__init__(index_dir, tmp / "server.log", workers=1, env=SERVER_ENV,
                         seeds_dir=SEEDS, cwd=self.cwd)
        self.http.headers["X-API-Key"] = SERVER_KEY

    def post(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.http.post(self.base + path, **kwargs)

    def raw(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are; (status, headers, body) of the answer."""
        chunks = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines)
        return int(status_line.split()[1]), headers, body

    def json_lines(self) -> list[dict]:
        complete = self.log().split("\n")[:-1]  # the last piece may be a line being written
        return [json.loads(line) for line in complete if line.startswith("{")]

    def access_lines(self, *request_ids: str, timeout: float = 10.0) -> dict[str, list[dict]]:
        """The access lines of these request ids, once each id has one (or the time is up)."""
        deadline = time.monotonic() + timeout
        while True:
            access = [r for r in self.json_lines() if r.get("logger") == "service.access"]
            found = {rid: [r for r in access if r["request_id"] == rid] for rid in request_ids}
            if all(found.values()) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

@pytest.fixture(scope="module")
def server(tmp_path_factory, built_index):
    if SKIP_SERVER:
        pytest.skip("SNIPPETS_TEST_SKIP_SERVER=1")
    with LiveServer(tmp_path_factory.mktemp("ops-serve"), built_index) as srv:
        yield srv


@skip_server
def test_served_app_requires_keys_and_says_so_at_start_up(server):
    records = server.json_lines()
    assert any(r.get("logger") == "service" and "API keys required: 1 configured"
               in r.get("message", "") for r in records)
    # (Only the CDS Hooks services say they are open: no CDS Client issuers are set here.)
    assert not any(r.get("level") == "warning" and "SNIPPETS_CDS_ISSUERS" not in
                   r.get("message", "") for r in records)
    refused = server.get("/v1/sources", headers={"X-API-Key": None})
    assert refused.status_code == 401
    assert refused.headers["Content-Type"] == PROBLEM_JSON
    assert refused.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert server.get("/v1/sources").status_code == 200
    assert server.get("/healthz", headers={"X-API-Key": None}).status_code == 200


@skip_server
def test_no_server_software_or_version_is_advertised(server):
    answers = [server.get(path).headers for path in ("/healthz", "/v1/nothing", "/docs")]
    answers.append(server.get("/v1/sources", headers={"X-API-Key": None}).headers)
    # gunicorn's own error pages, for requests the app never sees.
    answers.append(server.raw(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")[1])
    answers.append(server.raw(b"BROKEN\r\n\r\n")[1])
    for headers in answers:
        value = {k.lower(): v for k, v in headers.items()}.get("server", "")
        assert "gunicorn" not in value.lower() and not re.search(r"\d", value), value
    assert server.get("/healthz").headers["Server"] == "snippets"


@skip_server
def test_security_and_cors_headers_over_http(server):
    for path, status in (("/v1/snippets?q=sleep", 200), ("/v1/nothing", 404), ("/docs", 200),
                         ("/v1/snippets?limit=0", 400)):
        response = server.get(path, headers={"Origin": PORTAL})
        assert response.status_code == status
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Access-Control-Allow-Origin"] == PORTAL
    other = server.get("/v1/sources", headers={"Origin": "https://other.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers


@skip_server
def test_an_overlong_request_line_is_refused_by_gunicorn_and_serving_goes_on(server):
    marker = "overlongmarker" + uuid.uuid4().hex[:8]
    request_id = "overlong-" + uuid.uuid4().hex
    line = f"GET /v1/snippets?q={marker}{'a' * 10_000} HTTP/1.1\r\n".encode()
    status, _, body = server.raw(line + f"Host: x\r\nX-Request-ID: {request_id}\r\n"
                                        f"X-API-Key: {SERVER_KEY}\r\n\r\n".encode())
    assert 400 <= status < 500
    assert marker.encode() not in body
    # A header over limit_request_field_size is refused the same way.
    status, _, _ = server.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                              + b"b" * 9000 + b"\r\n\r\n")
    assert 400 <= status < 500
    after = server.get("/healthz", headers={"X-Request-ID": "after-" + request_id})
    assert after.status_code == 200
    found = server.access_lines("after-" + request_id)
    assert found["after-" + request_id]
    # The app never saw the refused request, and its query reached no log.
    assert not any(r.get("request_id") == request_id for r in server.json_lines())
    assert marker not in server.log()


@skip_server
def test_limits_from_the_environment_are_honoured_over_http(server):
    assert server.get("/v1/snippets", params={"q": "s" * 100}).status_code == 200
    too_long = server.get("/v1/snippets", params={"q": "s" * 101})
    assert too_long.status_code == 400
    assert too_long.json()["errors"][0]["parameter"] == "q"
    three = [("condition", "fibromyalgia")] * 3
    assert server.get("/v1/snippets", params=three).status_code == 200
    four = server.get("/v1/snippets", params=three + [("condition", "fibromyalgia")])
    assert four.status_code == 400
    assert four.json()["errors"][0]["parameter"] == "condition"


@skip_server
def test_a_body_over_the_limit_is_a_413_problem_over_http(server):
    headers = {"Content-Type": "application/json"}
    assert server.post(HOOK, data=padded(hook_body(), 2000), headers=headers).status_code == 200
    response = server.post(HOOK, data=padded(hook_body(), 30_000), headers=headers)
    assert response.status_code == 413
    assert response.headers["Content-Type"] == PROBLEM_JSON
    assert PATIENT_MARKER not in response.text
    assert server.get("/healthz").status_code == 200


@skip_server
def test_a_chunked_body_over_the_limit_is_a_413_over_http(server):
    data = padded(hook_body(), 30_000)
    chunks = (data[i:i + 1000] for i in range(0, len(data), 1000))  # sent chunked
    response = server.post(HOOK, data=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


@skip_server
def test_request_log_over_http_has_one_line_per_request_and_no_request_content(server):
    ids = {name: f"ops-{name}-{uuid.uuid4().hex[:8]}" for name in ("search", "hook", "error")}
    search = server.get("/v1/snippets",
                        params={"q": f"sleep {QUERY_MARKER}", "condition": "fibromyalgia"},
                        headers={"X-Request-ID": ids["search"]})
    hook = server.post(HOOK, json=hook_body(), headers={"X-Request-ID": ids["hook"]})
    error = server.get("/v1/snippets/no-such-snippet", headers={"X-Request-ID": ids["error"]})
    invalid = server.get("/v1/sources", headers={"X-Request-ID": "not valid " + "z" * 150})
    assert [search.status_code, hook.status_code, error.status_code,
            invalid.status_code] == [200, 200, 404, 200]
    assert len(hook.json()["cards"]) == 2
    for name, response in (("search", search), ("hook", hook), ("error", error)):
        assert response.headers["X-Request-ID"] == ids[name]
    generated = invalid.headers["X-Request-ID"]
    assert GENERATED_ID.fullmatch(generated)

    found = server.access_lines(*ids.values(), generated)
    expected = {ids["search"]: ("GET", "/v1/snippets", 200), ids["hook"]: ("POST", HOOK, 200),
                ids["error"]: ("GET", "/v1/snippets/no-such-snippet", 404),
                generated: ("GET", "/v1/sources", 200)}
    for request_id, (method, path, status) in expected.items():
        (line,) = found[request_id]  # exactly one line per request
        assert set(line) == ACCESS_FIELDS
        assert (line["method"], line["path"], line["status"]) == (method, path, status)
        assert isinstance(line["latency_ms"], int | float) and line["latency_ms"] >= 0
    log = server.log()
    # The path is logged; the query, the body and the key are not.
    for marker in (QUERY_MARKER, "fibromyalgia", PATIENT_MARKER, "Practitioner/1",
                   "ehr.example.org", SERVER_KEY, "not valid"):
        assert marker not in log, marker
    # gunicorn's access log is off: no text request lines next to the JSON ones.
    assert not [line for line in log.splitlines()
                if not line.startswith("{") and ("/v1/" in line or "/cds-services" in line)]
