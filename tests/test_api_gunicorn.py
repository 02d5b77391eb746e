"""`snippets serve`: real gunicorn workers over HTTP, building the index first when there is none.

Takes a few seconds; set SNIPPETS_TEST_SKIP_SERVER=1 to skip it.
"""

from __future__ import annotations

import json

import pytest
from api_helpers import (
    ACCEPTANCE,
    PROBLEM_JSON,
    SEEDS,
    SLEEP_SOURCE,
    assert_citation_matches,
    manifest,
)
from server_helpers import Server, skip_server

pytestmark = skip_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    # The index directory does not exist yet: serve must build it from the seeds.
    with Server(tmp / "index", tmp / "server.log", seeds_dir=SEEDS) as srv:
        yield srv


def test_serve_built_the_missing_index_from_the_seeds(server, built_index):
    assert (server.index_dir / "CURRENT").is_symlink()
    ready = server.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["version"] == manifest(server.index_dir)["version"]
    # Same seeds, same version as the index the other tests built in-process.
    assert body["version"] == manifest(built_index)["version"]
    assert body["sources"] == 5
    assert "building it from" in server.log()


def test_acceptance_query_over_http(server):
    response = server.get("/v1/snippets", params=ACCEPTANCE)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    first = body["results"][0]
    assert first["citation"]["source_id"] == SLEEP_SOURCE
    assert_citation_matches(first)
    assert "investigational-fibromyalgia" in [c["id"] for c in first["caveats"]]
    assert "general-disclaimer" in [c["id"] for c in body["caveats"]]


def test_both_workers_answer_the_same(server):
    # A new connection each time (the threaded workers keep connections alive), so requests
    # land on either worker.
    answers = {server.get("/v1/snippets", params={"q": "vagus", "limit": 50},
                          headers={"Connection": "close"}).text for _ in range(6)}
    assert len(answers) == 1


def test_problem_over_http(server):
    response = server.get("/v1/snippets", params={"q": "sleep", "limit": 0})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 400
    assert body["errors"][0]["parameter"] == "limit"
    missing = server.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == PROBLEM_JSON


def test_server_software_is_not_advertised(server):
    response = server.get("/healthz")
    assert response.status_code == 200
    assert "gunicorn" not in response.headers.get("Server", "").lower()


def test_access_log_has_requests_but_no_query_text(server):
    # Runs last in this module: it stops the server to read the complete log.
    marker = "zebrafinchquery"
    response = server.get("/v1/snippets",
                          params={"q": f"sleep {marker}", "condition": "fibromyalgia"})
    assert response.status_code == 200
    assert server.stop() == 0
    log = server.log()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "service.access"]
    searches = [r for r in access if r["path"] == "/v1/snippets"]
    assert searches, log
    assert all(r["method"] == "GET" and isinstance(r["status"], int) and r["request_id"]
               and r["latency_ms"] is not None for r in searches)
    assert any(r["status"] == 200 for r in searches)
    assert marker not in log
    # The build summary `serve` prints names conditions; the request lines never do.
    assert not any("fibromyalgia" in json.dumps(r) or "sleep" in json.dumps(r) for r in access)
    assert any(r["path"] == "/healthz" and r["status"] == 200 for r in access)
