"""Operations in process: limits sized for portals, the 429 and its headers, the response
cache's byte budget and key, probe reasons, JSON body limits, redirects and OPTIONS, and the
pieces of the gunicorn worker and logger that need no server (the server tests use them all
over HTTP: test_ops_http.py)."""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path

import pytest
from api_helpers import PROBLEM_JSON, assert_problem
from gunicorn.http import errors as http_errors
from limits import parse

from index.build import build
from service import create_app
from service.config import Config
from service.gunicorn_worker import ScrubFilter, problem_bytes, refusal, scrub
from service.security import hash_key

HOOK = "/cds-services/patient-education"
SEARCH = "/v1/snippets?q=sleep"


# -- limits sized for portals ------------------------------------------------------------------

def test_the_default_limit_leaves_a_portal_at_50_requests_a_second_room():
    item = parse(Config.RATE_LIMIT)
    per_second = item.amount / item.get_expiry()
    assert per_second >= 2 * 50, Config.RATE_LIMIT


def test_one_address_is_not_throttled_at_the_old_limits_rate(make):
    """1,300 requests in a burst from one address (the old default throttled at 1,200 a minute
    with two workers): all answered."""
    client = make(RATE_LIMIT=Config.RATE_LIMIT).test_client()
    statuses = {client.get("/v1/caveats").status_code for _ in range(1300)}
    assert statuses == {200}


def test_retry_after_only_on_429_and_the_detail_says_the_limit_in_words(make):
    client = make(RATE_LIMIT="3 per minute").test_client()
    allowed = [client.get(SEARCH) for _ in range(3)]
    for response in allowed:
        assert response.status_code == 200 and "Retry-After" not in response.headers
        assert response.headers["X-RateLimit-Limit"] == "3"
    refused = client.get(SEARCH)
    body = assert_problem(refused, 429)
    assert "3 requests per minute" in body["detail"] and "client address" in body["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    key = secrets.token_urlsafe(16)
    keyed = make(RATE_LIMIT="2 per 5 seconds", API_KEYS=hash_key(key)).test_client()
    auth = {"X-API-Key": key}
    assert [keyed.get(SEARCH, headers=auth).status_code for _ in range(2)] == [200, 200]
    detail = assert_problem(keyed.get(SEARCH, headers=auth), 429)["detail"]
    assert "2 requests per 5 seconds" in detail and "API key" in detail


def test_a_503_keeps_its_own_retry_after(tmp_path):
    app = create_app({"INDEX_DIR": str(tmp_path / "none"), "RATE_LIMIT": "3 per minute"})
    response = app.test_client().get(SEARCH)
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "5"


# -- the response cache ------------------------------------------------------------------------

def test_the_response_cache_is_bounded_in_bytes(make):
    app = make(RESPONSE_CACHE_MB=1)
    client = app.test_client()
    cache = app.extensions["snippets_responses"]
    for offset in range(45):
        for limit in (10, 50):
            assert client.get(f"/v1/snippets?limit={limit}&offset={offset}").status_code == 200
    assert 0 < cache.held <= cache.budget == 1024 * 1024
    assert len(cache) < 90  # older answers were dropped to stay within the budget


def test_the_cache_key_ignores_host_and_parameter_order_and_spelling(make):
    app = make()
    client = app.test_client()
    cache = app.extensions["snippets_responses"]
    first = client.get("/v1/snippets?q=voice+changes&limit=5")
    etags = {first.headers["ETag"]}
    for url, host in (("/v1/snippets?limit=5&q=voice%20changes", "a.example"),
                      ("/v1/snippets?q=voice+changes&limit=5", "evil.example"),
                      ("/v1/snippets?limit=5&q=voice+changes", "b.example:8080")):
        again = client.get(url, headers={"Host": host})
        assert again.data == first.data
        etags.add(again.headers["ETag"])
    assert len(etags) == 1 and len(cache) == 1
    # Another media type asked for is another answer.
    client.get("/v1/snippets?q=voice+changes&limit=5", headers={"Accept": "text/xml"})
    assert len(cache) == 2


def test_infobutton_links_come_from_the_public_url_whatever_the_host(make):
    client = make(PUBLIC_URL="https://snippets.example.org").test_client()
    url = ("/infobutton?mainSearchCriteria.v.c=M79.7&mainSearchCriteria.v.cs=2.16.840.1.113883.6.90"
           "&knowledgeResponseType=application/json")
    one = client.get(url, headers={"Host": "one.example"}).get_json()
    two = client.get(url, headers={"Host": "evil.example"}).get_json()
    assert one == two
    assert one["feed"]["base"].startswith("https://snippets.example.org")


# -- probes ------------------------------------------------------------------------------------

def test_readyz_reasons_name_no_path_and_no_exception_text(tmp_path):
    index_dir = tmp_path / "secret-place" / "index"
    app = create_app({"INDEX_DIR": str(index_dir), "RATE_LIMIT": "off"})
    client = app.test_client()
    missing = assert_problem(client.get("/readyz"), 503)["detail"]
    assert "no index built yet" in missing and "secret-place" not in missing
    built = build(Path(__file__).resolve().parent.parent / "seeds", index_dir)
    (built.generation / "sources.json").write_text("{not json", encoding="utf-8")
    app = create_app({"INDEX_DIR": str(index_dir), "RATE_LIMIT": "off"})
    detail = assert_problem(app.test_client().get("/readyz"), 503)["detail"]
    assert built.generation.name in detail
    assert "secret-place" not in detail and "/" not in detail.replace("`snippets build`", "")
    assert "JSONDecodeError" not in detail and "Expecting" not in detail
    app.extensions["snippets_index"].close()


def test_readyz_reports_the_rate_limit_storage(make):
    assert make().test_client().get("/readyz").get_json()["rate_limit_storage"] == "ok"
    off = make(RATE_LIMIT="off").test_client().get("/readyz").get_json()
    assert off["status"] == "ready" and off["rate_limit_storage"] == "off"


# -- JSON bodies, redirects, OPTIONS -----------------------------------------------------------

@pytest.mark.parametrize(("body", "words"), [
    (b"[" * 33 + b"]" * 33, "deeper than 32"),
    (b'{"a": ' * 40 + b"1" + b"}" * 40, "deeper than 32"),
    (b"[" * 50_000 + b"]" * 50_000, "deeper than 32"),
    (b'{"hook": ' + b"9" * 5000 + b"}", "longer than 40"),
    (b'{"hook": 1.' + b"5" * 100 + b"}", "longer than 40"),
    (b'{"hook": NaN}', "NaN is not a JSON value"),
    (b'{"hook": -Infinity}', "-Infinity is not a JSON value"),
])
def test_json_bodies_too_deep_or_with_huge_numbers_are_400(make, body, words):
    client = make(PROPAGATE_EXCEPTIONS=False).test_client()
    response = client.post(HOOK, data=body, content_type="application/json")
    assert words in assert_problem(response, 400)["detail"]


def test_json_within_the_limits_is_left_to_the_view(make):
    client = make().test_client()
    response = client.post(HOOK, data=b"[" * 32 + b"]" * 32, content_type="application/json")
    assert_problem(response, 400)  # not a hook request, said by the schema
    assert "deeper" not in response.get_json()["detail"]


@pytest.mark.parametrize("path", ["/v1//sources", "/v1/sources/", "/docs/"])
def test_no_redirects_only_problems(make, path):
    response = make().test_client().get(path)
    assert response.status_code == 404 and response.content_type == PROBLEM_JSON


def test_a_leading_double_slash_is_the_path_not_a_redirect(make):
    # The path as a server receives it (the test client would read "//healthz" as a host):
    # Werkzeug's matcher ignores the empty first segment; it never redirects.
    response = make().test_client().get("/", environ_overrides={"PATH_INFO": "//healthz"})
    assert response.status_code == 200 and response.is_json


def test_options_is_204_with_allow(make):
    response = make().test_client().options("/v1/snippets")
    assert response.status_code == 204 and response.data == b""
    assert "GET" in response.headers["Allow"] and "Content-Type" not in response.headers


# -- gunicorn's worker and logger, without a server --------------------------------------------

def test_refusals_map_to_statuses_and_never_quote_the_request():
    line = f"GET /v1/snippets?q=jane+roe HTTP/1.1 {time.time()}"
    cases = [(http_errors.LimitRequestLine(10_000, 8190), 414),
             (http_errors.LimitRequestHeaders("limit request headers fields"), 431),
             (http_errors.InvalidRequestLine(line), 400),
             (http_errors.InvalidHeaderName("jane roe"), 400),
             (http_errors.InvalidChunkSize("jane roe"), 400),
             (RuntimeError(line), 500)]
    for exc, status in cases:
        answered, detail = refusal(exc)
        assert answered == status and "jane" not in detail
        raw = problem_bytes(answered, detail)
        head, _, body = raw.partition(b"\r\n\r\n")
        assert f"Content-Type: {PROBLEM_JSON}".encode() in head
        assert json.loads(body)["status"] == status


def test_the_gunicorn_log_keeps_numbers_and_start_up_values_only():
    assert scrub("Booting worker with pid: %s", (1234,)) == "Booting worker with pid: 1234"
    assert scrub("Listening at: %s (%s)", ("http://127.0.0.1:8000", 7)) == \
        "Listening at: http://127.0.0.1:8000 (7)"
    assert scrub("Error handling request %s %s", ("GET", "/v1/snippets?q=jane")) == \
        "Error handling request <str> <str>"
    assert scrub(ValueError("q=jane"), ()) == "ValueError"
    record = logging.LogRecord("gunicorn.error", logging.DEBUG, __file__, 1,
                               "Ignored premature client disconnection. %s",
                               (http_errors.NoMoreData(b"GET /?q=jane"),), None)
    assert ScrubFilter().filter(record)
    assert "jane" not in record.getMessage()
