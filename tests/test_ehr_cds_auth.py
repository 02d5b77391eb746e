"""CDS Hooks "Trusting CDS Clients": signed JWTs on every service and feedback call.

In process for each way a token can be wrong; over real HTTP (gunicorn, two workers) for a
JWK Set fetched from a local HTTP server and for jti replay shared through Redis.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from api_helpers import SEEDS, assert_problem
from cds_jwt_helpers import ISSUER, Client
from log_helpers import every_logger_captured
from redis_helpers import start_redis
from server_helpers import Server, skip_server
from test_ehr_cds_hooks import FIBRO, hook_request

BASE = "https://cds.example.org"
SERVICE = "/cds-services/patient-education"
FEEDBACK = SERVICE + "/feedback"


@pytest.fixture(scope="module")
def ehr() -> Client:
    return Client()


@pytest.fixture
def secured(make, ehr, tmp_path):
    app = make(PUBLIC_URL=BASE, CDS_ISSUERS=f"{ISSUER}, https://other-ehr.example.org",
               CDS_JWKS=str(ehr.write_jwks(tmp_path / "jwks.json")),
               API_KEYS="0" * 64)  # keys configured: they must not apply to CDS Hooks
    return app.test_client()


def post(client, headers=None, path=SERVICE, body=None):
    return client.post(path, json=body or hook_request(FIBRO), headers=headers or {})


def refused(response, says: str) -> dict:
    problem = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="cds-services"')
    assert says in problem["detail"], problem["detail"]
    return problem


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"], ids=["RS384", "ES384"])
def test_a_signed_jwt_for_the_endpoint_is_accepted(secured, ehr, kid):
    response = post(secured, ehr.bearer(BASE + SERVICE, kid=kid))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["cards"]


def test_aud_may_be_a_list_holding_the_endpoint(secured, ehr):
    response = post(secured, ehr.bearer([BASE + SERVICE, "https://x.example"]))
    assert response.status_code == 200


def test_discovery_stays_open(secured):
    assert secured.get("/cds-services").status_code == 200


@pytest.mark.parametrize(("headers", "says"), [
    ({}, "Authorization: Bearer <JWT>"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization: Bearer <JWT>"),
    ({"Authorization": "Bearer not-a-jwt"}, "not a JWT"),
], ids=["missing", "basic", "garbage"])
def test_a_call_without_a_jwt_is_refused(secured, headers, says):
    refused(post(secured, headers), says)


def test_api_keys_do_not_apply_to_cds_hooks(secured, ehr):
    # A key would not be enough either: the API key header is not a CDS Client JWT.
    refused(post(secured, {"X-API-Key": "anything"}), "Bearer <JWT>")
    assert post(secured, ehr.bearer(BASE + SERVICE)).status_code == 200
    # ...while the rest of the API still wants its key.
    assert secured.get("/v1/sources").status_code == 401


def test_expired(secured, ehr):
    now = int(time.time())
    refused(post(secured, ehr.bearer(BASE + SERVICE, iat=now - 400, exp=now - 100)),
            "expired")


def test_lifetime_over_five_minutes(secured, ehr):
    refused(post(secured, ehr.bearer(BASE + SERVICE, lifetime=301)), "at most 300 s")


def test_another_audience(secured, ehr):
    refused(post(secured, ehr.bearer(BASE + "/cds-services/other")), BASE + SERVICE)
    # The Host a request came to is not the audience: the configured public URL is.
    refused(post(secured, ehr.bearer("http://localhost" + SERVICE)), "aud")


def test_untrusted_issuer(secured, ehr):
    stranger = Client("https://stranger.example.org")
    stranger.keys = ehr.keys  # even signed by a trusted key
    refused(post(secured, stranger.bearer(BASE + SERVICE)), "iss is not a trusted")


def test_key_not_in_the_set(secured):
    refused(post(secured, Client().bearer(BASE + SERVICE)), "signature does not verify")
    stranger = Client()
    stranger.keys = {"other": stranger.keys["rsa-1"]}
    refused(post(secured, stranger.bearer(BASE + SERVICE, kid="other")), "kid names no key")


def test_other_algorithms_are_refused(secured, ehr):
    token = jwt.encode({"iss": ISSUER, "aud": BASE + SERVICE, "iat": int(time.time()),
                        "exp": int(time.time()) + 60, "jti": "x"}, "secret" * 6,
                       algorithm="HS256", headers={"kid": "rsa-1"})
    refused(post(secured, {"Authorization": f"Bearer {token}"}), "RS384 or ES384")


@pytest.mark.parametrize("claim", ["jti", "iat", "iss"])
def test_required_claims(secured, ehr, claim):
    refused(post(secured, ehr.bearer(BASE + SERVICE, **{claim: None})), "")


def test_replayed_jti(secured, ehr):
    headers = ehr.bearer(BASE + SERVICE)
    assert post(secured, headers).status_code == 200
    refused(post(secured, headers), "used before")


def test_feedback_calls_need_a_jwt_for_the_feedback_url(secured, ehr):
    body = {"feedback": [{"card": "a4d7b8a3-0a4e-4b51-9d0b-7c51a3c1f001", "outcome": "accepted",
                          "outcomeTimestamp": "2026-11-30T10:00:00Z"}]}
    refused(post(secured, path=FEEDBACK, body=body), "Bearer <JWT>")
    refused(post(secured, ehr.bearer(BASE + SERVICE), path=FEEDBACK, body=body), "aud")
    response = post(secured, ehr.bearer(BASE + FEEDBACK), path=FEEDBACK, body=body)
    assert response.status_code == 200


def test_open_without_issuers_and_said_at_start(built_index, tmp_path, caplog):
    from api_helpers import make_app
    with every_logger_captured(caplog):
        app = make_app(built_index)
    try:
        assert "SNIPPETS_CDS_ISSUERS is not set" in caplog.text
        assert post(app.test_client()).status_code == 200
    finally:
        app.extensions["snippets_index"].close()


def test_issuers_without_a_jwks_do_not_start(make):
    with pytest.raises(ValueError, match="SNIPPETS_CDS_JWKS"):
        make(CDS_ISSUERS=ISSUER)
    with pytest.raises(ValueError, match="no such file"):
        make(CDS_ISSUERS=ISSUER, CDS_JWKS="/nonexistent/jwks.json")
    with pytest.raises(ValueError, match="https URL"):
        make(CDS_ISSUERS=ISSUER, CDS_JWKS="ftp://keys.example.org/jwks.json")


def test_tokens_never_reach_the_logs(secured, ehr, caplog):
    headers = ehr.bearer(BASE + SERVICE)
    with every_logger_captured(caplog):
        logging.getLogger("service").debug("capture-probe")
        post(secured, headers)
        post(secured, headers)  # replayed: refused
    token = headers["Authorization"].split()[1]
    assert "capture-probe" in caplog.text
    assert token not in caplog.text and token.split(".")[1] not in caplog.text


# -- over real HTTP -----------------------------------------------------------------------------

class JwksServer:
    """A local HTTP server handing out a JWK Set, counting the fetches."""

    def __init__(self, jwks: dict):
        body = json.dumps(jwks).encode()
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@skip_server
def test_jwks_from_a_url_and_replay_across_workers_through_redis(built_index, tmp_path, ehr):
    redis = start_redis(tmp_path)
    base = "https://cds.example.org/snippets"
    try:
        with JwksServer(ehr.jwks()) as keys, Server(
                built_index, tmp_path / "server.log", workers=2, seeds_dir=SEEDS, env={
                    "SNIPPETS_PUBLIC_URL": base, "SNIPPETS_CDS_ISSUERS": ISSUER,
                    "SNIPPETS_CDS_JWKS": keys.url, "SNIPPETS_RATE_LIMIT_STORAGE": redis.url,
                    "SNIPPETS_DATA_DIR": str(tmp_path / "data")}) as server:
            url = server.base + SERVICE
            body = json.dumps(hook_request(FIBRO))
            json_type = {"Content-Type": "application/json"}
            first = [ehr.bearer(base + SERVICE, kid=kid) for kid in ("rsa-1", "ec-1")] * 3
            answers = [server.http.post(url, data=body, headers={**h, **json_type}, timeout=10)
                       for h in first[:2]]
            assert [a.status_code for a in answers] == [200, 200]
            # Each token again, many times: whichever worker answers, the jti was seen.
            replays = [server.http.post(url, data=body, headers={**h, **json_type},
                                        timeout=10) for h in first]
            assert [r.status_code for r in replays] == [401] * len(first)
            assert all("used before" in r.json()["detail"] for r in replays)
            assert all(r.headers["WWW-Authenticate"].startswith("Bearer") for r in replays)
            # The key set is fetched once per worker and kept, not once per call.
            assert 1 <= keys.fetches <= 2
            now = int(time.time())
            stranger = Client("https://stranger.example.org")
            stranger.keys = ehr.keys
            wrong = {
                "missing": {},
                "expired": ehr.bearer(base + SERVICE, iat=now - 400, exp=now - 100),
                "other audience": ehr.bearer(server.base + SERVICE),  # the address it came to
                "untrusted issuer": stranger.bearer(base + SERVICE),
            }
            for what, headers in wrong.items():
                answer = server.http.post(url, data=body, headers={**headers, **json_type},
                                          timeout=10)
                assert answer.status_code == 401, what
                assert answer.headers["Content-Type"] == "application/problem+json", what
                assert answer.headers["WWW-Authenticate"].startswith("Bearer"), what
            assert "open to any caller" not in server.log()
    finally:
        redis.stop()
