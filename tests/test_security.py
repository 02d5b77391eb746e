"""API keys, rate limits, CORS and security headers (in process), and the rate limit shared by
two app instances through a real redis-server (skipped without one, unless
SNIPPETS_REQUIRE_REDIS=1, where that is a failure)."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser

import pytest
import redis
from api_helpers import PROBLEM_JSON, assert_problem
from click.testing import CliRunner
from log_helpers import every_logger_captured, service_log
from redis_helpers import REQUIRE_ENV, free_port, redis_unavailable, start_redis

from service import security
from service.cli import cli

SEARCH = "/v1/snippets?q=sleep"
PORTAL = "https://portal.example.org"
OPEN_PATHS = ["/healthz", "/readyz", "/openapi.yaml", "/openapi.json", "/docs",
              "/docs/static/docs.css", "/docs/swagger-ui/swagger-ui-bundle.js",
              "/assets/pages.css"]
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


# -- helpers -----------------------------------------------------------------------------------

def new_key() -> tuple[str, str]:
    """(key, sha256) as printed by `snippets api-key`."""
    result = CliRunner().invoke(cli, ["api-key"])
    assert result.exit_code == 0, result.output
    printed = dict(line.split(":", 1) for line in result.stdout.splitlines())
    return printed["key"].strip(), printed["sha256"].strip()


@pytest.fixture(scope="module")
def keys() -> list[tuple[str, str]]:
    return [new_key() for _ in range(3)]


@contextmanager
def service_handler_output() -> Iterator[io.StringIO]:
    """The text the service's own stderr handler writes (an app must exist already)."""
    logger = logging.getLogger("service")
    (handler,) = [h for h in logger.handlers if getattr(h, "_snippets", False)]
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def auth(key: str, how: str = "x-api-key") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if how == "bearer" else {"X-API-Key": key}


def statuses(client, path: str, times: int, **kwargs) -> list[int]:
    found = []
    for _ in range(times):
        with client.get(path, **kwargs) as response:  # static files hold an open file
            found.append(response.status_code)
    return found


# -- API keys ----------------------------------------------------------------------------------

def test_api_key_command_prints_a_new_key_and_its_sha256():
    result = CliRunner().invoke(cli, ["api-key"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["key", "sha256"]
    key, digest = (line.split(":", 1)[1].strip() for line in lines)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", key)  # 32 random bytes, URL-safe
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert "SNIPPETS_API_KEYS" in result.stderr and key not in result.stderr
    assert new_key()[0] != key


def test_without_keys_the_api_is_open_and_start_up_warns(make):
    make()  # the service's stderr handler exists from here on
    with service_log() as log, service_handler_output() as output:
        app = make()
    # (The CDS Hooks services say on their own that they are open without issuers.)
    warnings = [r for r in log.records if r.levelno == logging.WARNING
                and "SNIPPETS_CDS_ISSUERS" not in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].name == "service"
    assert "SNIPPETS_API_KEYS" in warnings[0].getMessage()
    assert "open" in warnings[0].getMessage()
    # Also written by the service's own handler, as a JSON line.
    assert '"level": "warning"' in output.getvalue()
    assert "the API is open" in output.getvalue()
    client = app.test_client()
    assert client.get(SEARCH).status_code == 200
    assert client.get(SEARCH, headers=auth("anything")).status_code == 200


def test_with_keys_start_up_says_how_many_and_does_not_warn(make, keys):
    with service_log() as log:
        make(API_KEYS=",".join(digest for _, digest in keys))
    assert not [r for r in log.records if r.levelno >= logging.WARNING
                and "SNIPPETS_CDS_ISSUERS" not in r.getMessage()]
    assert any("3 configured" in r.getMessage() for r in log.records)
    for key, digest in keys:
        assert not any(key in line or digest in line for line in log.lines)


@pytest.fixture
def keyed(make, keys):
    return make(API_KEYS=keys[0][1]).test_client()


def test_missing_key_is_401_with_a_bearer_challenge(keyed):
    for response in (keyed.get(SEARCH), keyed.get("/v1/sources"),
                     keyed.get(SEARCH, headers={"Authorization": "Bearer "}),
                     keyed.get(SEARCH, headers={"Authorization": "Basic dXNlcjpwYXNz"})):
        body = assert_problem(response, 401)
        assert re.fullmatch(r'Bearer realm="[^"]+"', response.headers["WWW-Authenticate"])
        assert "required" in body["detail"]
        assert "Bearer" in body["detail"] and "X-API-Key" in body["detail"]


def test_wrong_key_is_401_saying_it_is_not_valid(keyed, keys):
    key, digest = keys[0]
    wrong = [keys[1][0], key + "x", key[:-1], key.upper(),
             digest]  # the configured hash is not a key
    for presented in wrong:
        for how in ("bearer", "x-api-key"):
            response = keyed.get(SEARCH, headers=auth(presented, how))
            body = assert_problem(response, 401)
            assert "not valid" in body["detail"]
            assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
            assert presented not in response.get_data(as_text=True)


def test_bearer_and_x_api_key_are_both_accepted(keyed, keys):
    key = keys[0][0]
    for headers in (auth(key, "bearer"), auth(key), {"Authorization": f"bearer {key}"}):
        response = keyed.get(SEARCH, headers=headers)
        assert response.status_code == 200, headers
        assert response.get_json()["results"]


def test_each_of_several_configured_keys_works(make, keys):
    # As an operator might paste them: spaces, upper case, a trailing comma.
    configured = " , ".join([keys[0][1].upper(), keys[1][1], f" {keys[2][1]} ", ""])
    client = make(API_KEYS=configured).test_client()
    for key, _ in keys:
        for how in ("bearer", "x-api-key"):
            assert client.get("/v1/sources", headers=auth(key, how)).status_code == 200
    assert client.get("/v1/sources", headers=auth(new_key()[0])).status_code == 401


def test_probes_spec_and_docs_stay_open(keyed):
    for path in OPEN_PATHS:
        with keyed.get(path) as response:
            assert response.status_code == 200, path
            assert "WWW-Authenticate" not in response.headers


def test_cors_preflight_is_not_blocked_by_auth(make, keys):
    client = make(API_KEYS=keys[0][1], CORS_ORIGINS=PORTAL).test_client()
    preflight = client.options("/v1/snippets", headers={
        "Origin": PORTAL, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == PORTAL
    # The browser can read why the real request was refused.
    refused = client.get(SEARCH, headers={"Origin": PORTAL})
    assert_problem(refused, 401)
    assert refused.headers["Access-Control-Allow-Origin"] == PORTAL
    allowed = client.get(SEARCH, headers={"Origin": PORTAL, **auth(keys[0][0], "bearer")})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == PORTAL


@pytest.mark.parametrize("kind", ["raw key", "short digest", "one of two", "not hex"])
def test_a_value_that_is_not_a_sha256_digest_fails_at_start_up(make, keys, kind):
    key, digest = keys[0]
    value = {"raw key": key, "short digest": digest[:-1], "one of two": f"{digest},{key}",
             "not hex": "z" * 64}[kind]
    with pytest.raises(ValueError, match="SHA-256") as raised:
        make(API_KEYS=value)
    assert "snippets api-key" in str(raised.value)
    assert key not in str(raised.value)  # the secret is not echoed into a start-up log


def test_keys_are_compared_in_constant_time_against_every_hash(make, keys, monkeypatch):
    hashes = [digest for _, digest in keys]
    client = make(API_KEYS=",".join(hashes)).test_client()
    original = security.hmac.compare_digest
    calls: list[tuple[str, str]] = []

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    for presented, expected in [(keys[0][0], 200), (keys[2][0], 200), ("wrong-key", 401)]:
        calls.clear()
        assert client.get("/v1/sources", headers=auth(presented)).status_code == expected
        ours = [c for c in calls if c[1] in hashes]
        # Every configured hash is compared, also after a match (no early exit), and what is
        # compared is the hash of the presented key, never the key itself.
        assert sorted(b for _, b in ours) == sorted(hashes), presented
        assert {a for a, _ in ours} == {hashlib.sha256(presented.encode()).hexdigest()}


def test_the_key_never_reaches_a_log_line_or_a_response(make, keys, caplog):
    key, digest = keys[0]
    wrong = "WRONGKEY-" + keys[1][0]
    app = make(API_KEYS=digest, RATE_LIMIT="3 per minute", LOG_LEVEL="DEBUG",
               PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    responses = []
    with every_logger_captured(caplog):
        with service_handler_output() as output:
            logging.getLogger("service").debug("capture-probe")
            for how in ("bearer", "x-api-key"):
                responses += [client.get(SEARCH, headers=auth(key, how)),
                              client.get("/v1/nothing", headers=auth(key, how)),
                              client.get(SEARCH, headers=auth(wrong, how))]
            responses += [client.get("/v1/snippets?limit=0", headers=auth(key)),
                          client.get(SEARCH, headers=auth(key))]  # over the limit
    assert [r.status_code for r in responses] == [200, 404, 401, 200, 404, 401, 400, 429]
    assert "capture-probe" in caplog.text and "capture-probe" in output.getvalue()
    assert '"status": 429' in output.getvalue()
    for secret in (key, wrong):
        assert secret not in caplog.text
        assert secret not in output.getvalue()
        for record in caplog.records:
            assert secret not in record.getMessage()
            assert secret not in repr(record.args)
            assert secret not in repr(getattr(record, "fields", None))
        for response in responses:
            assert secret not in response.get_data(as_text=True)
            assert not any(secret in value for _, value in response.headers.items())


# -- rate limits -------------------------------------------------------------------------------

def test_the_fourth_request_in_a_minute_is_a_429_problem(make):
    client = make(RATE_LIMIT="3 per minute").test_client()
    allowed = [client.get(SEARCH) for _ in range(3)]
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r.headers["X-RateLimit-Remaining"] for r in allowed] == ["2", "1", "0"]
    response = client.get(SEARCH)
    body = assert_problem(response, 429)
    assert "minute" in body["detail"]
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == "3"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())


def test_limits_are_per_key(make, keys):
    client = make(API_KEYS=",".join(d for _, d in keys[:2]),
                  RATE_LIMIT="3 per minute").test_client()
    first, second = keys[0][0], keys[1][0]
    # One key's budget, whichever header carries it.
    assert [client.get(SEARCH, headers=auth(first, how)).status_code
            for how in ("bearer", "x-api-key", "bearer", "x-api-key")] == [200, 200, 200, 429]
    assert statuses(client, SEARCH, 4, headers=auth(second)) == [200, 200, 200, 429]
    # Keys have their own budgets even when they come from the same address.
    assert client.get(SEARCH, headers=auth(first)).status_code == 429


def test_limits_are_per_client_address_without_keys(make):
    client = make(RATE_LIMIT="3 per minute").test_client()
    one = {"environ_base": {"REMOTE_ADDR": "198.51.100.1"}}
    two = {"environ_base": {"REMOTE_ADDR": "198.51.100.2"}}
    assert statuses(client, SEARCH, 4, **one) == [200, 200, 200, 429]
    assert statuses(client, SEARCH, 4, **two) == [200, 200, 200, 429]
    # Without trusted proxies, X-Forwarded-For is the client's own claim and changes nothing.
    spoofed = client.get(SEARCH, headers={"X-Forwarded-For": "203.0.113.50"}, **one)
    assert spoofed.status_code == 429


def test_behind_a_proxy_the_forwarded_address_is_the_client(make):
    client = make(RATE_LIMIT="3 per minute", PROXY_COUNT=1).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    def get(forwarded: str) -> int:
        return client.get(SEARCH, headers={"X-Forwarded-For": forwarded},
                          environ_base=proxy).status_code

    assert [get("203.0.113.7") for _ in range(4)] == [200, 200, 200, 429]
    assert [get("203.0.113.8") for _ in range(3)] == [200, 200, 200]
    # The proxy appends the address it saw; what the client put in front does not count.
    assert get("192.0.2.99, 203.0.113.7") == 429


def test_probes_docs_and_preflights_are_never_limited(make):
    client = make(RATE_LIMIT="3 per minute", CORS_ORIGINS=PORTAL).test_client()
    for path in OPEN_PATHS:
        assert statuses(client, path, 6) == [200] * 6, path
    assert statuses(client, SEARCH, 4) == [200, 200, 200, 429]
    for _ in range(5):
        preflight = client.options("/v1/snippets", headers={
            "Origin": PORTAL, "Access-Control-Request-Method": "GET"})
        assert preflight.status_code == 204
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("setting", ["off", "OFF", ""])
def test_rate_limit_off_disables_it(make, setting):
    client = make(RATE_LIMIT=setting).test_client()
    responses = [client.get(SEARCH) for _ in range(10)]
    assert [r.status_code for r in responses] == [200] * 10
    assert not any("X-RateLimit-Limit" in r.headers for r in responses)


def test_two_apps_in_one_process_do_not_share_memory_counters(make):
    first = make(RATE_LIMIT="3 per minute").test_client()
    second = make(RATE_LIMIT="3 per minute").test_client()
    assert statuses(first, SEARCH, 4) == [200, 200, 200, 429]
    assert statuses(second, SEARCH, 3) == [200, 200, 200]


def test_the_budget_covers_the_whole_api_not_each_endpoint(make):
    client = make(RATE_LIMIT="3 per minute").test_client()
    assert statuses(client, SEARCH, 3) == [200, 200, 200]
    assert client.get("/v1/sources").status_code == 429


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        assert server.stop() is not None
        assert server.process.poll() is not None


def test_two_replicas_share_one_budget_through_redis(make, keys, redis_server):
    (key, digest), (other, other_digest) = keys[0], keys[1]
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, decode_responses=True)
    try:
        client.flushall()
        config = {"API_KEYS": f"{digest},{other_digest}", "RATE_LIMIT": "3 per minute",
                  "RATE_LIMIT_STORAGE": redis_server.url}
        one, two = make(**config).test_client(), make(**config).test_client()
        answers = [replica.get(SEARCH, headers=auth(key)) for replica in (one, two, one)]
        assert [r.status_code for r in answers] == [200, 200, 200]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0"]
        assert_problem(two.get(SEARCH, headers=auth(key)), 429)
        assert_problem(one.get(SEARCH, headers=auth(key)), 429)
        # Another key has its own budget, counted in redis too.
        assert two.get(SEARCH, headers=auth(other)).status_code == 200
        stored = client.keys("*")
        assert len(stored) == 2, stored
        for name in stored:
            assert 0 < client.ttl(name) <= 60  # counters expire with their window
            assert int(client.get(name)) >= 1  # a count, nothing else
            assert key not in name and other not in name  # named by the key's hash
    finally:
        client.close()


def test_unreachable_redis_fails_open_to_memory_and_readyz_says_degraded(make):
    url = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    app = make(RATE_LIMIT="3 per minute", RATE_LIMIT_STORAGE=url, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["status"] == "degraded"
    assert ready.get_json()["rate_limit_storage"] == "degraded"
    assert url.rsplit(":", 1)[1] not in ready.get_data(as_text=True)
    # Counted in this process's memory meanwhile: the same limit, per worker.
    assert statuses(client, SEARCH, 4) == [200, 200, 200, 429]


def test_missing_redis_skips_locally_and_fails_when_required(monkeypatch):
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server"):
        redis_unavailable("redis-server is not installed")
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_ENV):
        redis_unavailable("redis-server is not installed")


# -- CORS --------------------------------------------------------------------------------------

def test_no_cors_headers_without_configured_origins(make):
    client = make().test_client()
    origin = {"Origin": PORTAL}
    responses = [client.get(SEARCH, headers=origin), client.get("/healthz", headers=origin),
                 client.get("/v1/nothing", headers=origin), client.get("/docs", headers=origin),
                 client.options("/v1/snippets", headers={
                     **origin, "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"})]
    for response in responses:
        assert not [h for h in response.headers.keys() if h.startswith("Access-Control-")]


@pytest.fixture
def portal(make):
    return make(CORS_ORIGINS=PORTAL).test_client()


def test_the_configured_origin_may_read_responses(portal):
    for path, status in ((SEARCH, 200), ("/v1/nothing", 404), ("/v1/snippets?limit=0", 400)):
        response = portal.get(path, headers={"Origin": PORTAL})
        assert response.status_code == status
        assert response.headers["Access-Control-Allow-Origin"] == PORTAL
        exposed = {h.strip().lower()
                   for h in response.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"x-request-id", "retry-after"} <= exposed
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_responses_that_depend_on_the_origin_say_so_for_caches(portal):
    allowed = portal.get(SEARCH, headers={"Origin": PORTAL})
    other = portal.get(SEARCH, headers={"Origin": "https://other.example.com"})
    assert allowed.headers.get("Access-Control-Allow-Origin") == PORTAL
    assert "Access-Control-Allow-Origin" not in other.headers
    for response in (allowed, other):
        vary = {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}
        assert "origin" in vary


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://portal.example.org",
                                    "https://portal.example.org.evil.example.com",
                                    "https://sub.portal.example.org", "null"])
def test_other_origins_get_no_cors_headers(portal, origin):
    response = portal.get(SEARCH, headers={"Origin": origin})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = portal.options("/v1/snippets", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_preflight_allows_get_with_authorization(portal):
    response = portal.options("/v1/snippets", headers={
        "Origin": PORTAL, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, x-request-id"})
    assert 200 <= response.status_code < 300
    assert response.headers["Access-Control-Allow-Origin"] == PORTAL
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert "GET" in methods
    allowed = {h.strip().lower()
               for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "x-request-id"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0


# -- security headers --------------------------------------------------------------------------

def csp_directives(header: str) -> dict[str, list[str]]:
    parts = [d.split() for d in header.split(";") if d.strip()]
    return {p[0].lower(): p[1:] for p in parts}


def test_security_headers_on_api_problem_and_docs_responses(make, keys):
    plain = make().test_client()
    keyed = make(API_KEYS=keys[0][1]).test_client()
    limited = make(RATE_LIMIT="1 per minute").test_client()
    small = make(MAX_CONTENT_LENGTH=2000).test_client()
    limited.get(SEARCH)
    responses = {
        "search": (plain.get(SEARCH), 200),
        "snippet": (plain.get("/v1/sources"), 200),
        "spec": (plain.get("/openapi.yaml"), 200),
        "docs": (plain.get("/docs"), 200),
        "css": (plain.get("/docs/static/docs.css", buffered=True), 200),
        "400": (plain.get("/v1/snippets?limit=0"), 400),
        "404": (plain.get("/v1/nothing"), 404),
        "405": (plain.post("/v1/snippets"), 405),
        "401": (keyed.get(SEARCH), 401),
        "413": (small.post("/cds-services/patient-education", data=b" " * 3000,
                           content_type="application/json"), 413),
        "429": (limited.get(SEARCH), 429),
    }
    for name, (response, status) in responses.items():
        assert response.status_code == status, name
        for header, value in SECURITY_HEADERS.items():
            assert response.headers.get(header) == value, (name, header)
        assert response.headers.get("Content-Security-Policy"), name
        if status >= 400:
            assert response.mimetype == PROBLEM_JSON, name
            # A problem body cannot be rendered as a page, nor framed.
            directives = csp_directives(response.headers["Content-Security-Policy"])
            assert directives["default-src"] == ["'none'"], name
            assert directives["frame-ancestors"] == ["'none'"], name


def test_page_csp_allows_only_this_servers_scripts_and_styles(make):
    client = make().test_client()
    for path in ("/docs", "/docs/static/docs-init.js", "/"):
        with client.get(path) as response:
            directives = csp_directives(response.headers["Content-Security-Policy"])
        assert directives["default-src"] == ["'none'"]
        assert directives["style-src"] == ["'self'"]
        assert directives["script-src"] == ["'self'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert not any("unsafe" in source or source == "*" or source.startswith("http")
                       for sources in directives.values() for source in sources)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def test_docs_page_has_nothing_its_csp_would_block(make):
    client = make().test_client()
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    parser = Tags()
    parser.feed(response.get_data(as_text=True))
    parser.close()
    names = [tag for tag, _ in parser.tags]
    assert "style" not in names and "iframe" not in names
    for tag, attrs in parser.tags:
        if tag == "script":  # our own files only: no inline script
            assert (attrs.get("src") or "").startswith("/"), attrs
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for url_attr in ("href", "src", "action"):
            assert not (attrs.get(url_attr) or "").lower().startswith("javascript:")
        if tag in ("img", "link", "script"):
            url = attrs.get("src") or attrs.get("href") or ""
            assert url.startswith("/") and not url.startswith("//"), (tag, url)
    sheets = [attrs["href"] for tag, attrs in parser.tags
              if tag == "link" and attrs.get("rel") == "stylesheet"]
    assert sheets  # the page is styled, from its own origin
    for href in sheets:
        with client.get(href) as sheet:
            assert sheet.status_code == 200 and sheet.mimetype == "text/css"
