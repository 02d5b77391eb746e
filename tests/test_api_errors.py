"""Every error is an application/problem+json body that says what was wrong."""

from __future__ import annotations

import os

import pytest
from api_helpers import app_for, assert_bad_parameter, assert_problem

from index.build import CURRENT

# -- 404 and 405 -----------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "names"), [
    ("/v1/snippets/003_c10700c13901ee51-000000000000", "003_c10700c13901ee51-000000000000"),
    ("/v1/snippets/nope", "nope"),
    ("/v1/sources/nope", "nope"),
    ("/v1/sources/003_c10700c13901ee51-72b1e422383a", "003_c10700c13901ee51-72b1e422383a"),
])
def test_unknown_snippet_or_source_is_a_404_naming_it(client, path, names):
    body = assert_problem(client.get(path), 404)
    assert names in body["detail"]


@pytest.mark.parametrize("path", ["/nope", "/v1", "/v1/snippets/", "/v2/snippets", "/v1/source"])
def test_unknown_path_is_a_404_problem(client, path):
    assert_problem(client.get(path), 404)


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/v1/snippets"),
    ("put", "/v1/snippets"),
    ("delete", "/v1/sources/003_c10700c13901ee51"),
    ("post", "/readyz"),
])
def test_wrong_method_is_a_405_problem_with_allow(client, method, path):
    response = getattr(client, method)(path, json={"q": "sleep"})
    assert_problem(response, 405)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "GET" in allowed
    assert method.upper() not in allowed


# -- 400: parameters -------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "parameter"), [
    ({"q": "sleep", "limit": 0}, "limit"),
    ({"q": "sleep", "limit": 51}, "limit"),
    ({"q": "sleep", "limit": "ten"}, "limit"),
    ({"q": "sleep", "limit": ""}, "limit"),
    ({"q": "sleep", "offset": -1}, "offset"),
    ({"q": "sleep", "offset": 10_001}, "offset"),
    ({"q": "sleep", "max_grade": -1}, "max_grade"),
    ({"q": "sleep", "max_grade": 31}, "max_grade"),
    ({"q": "sleep", "max_grade": "abc"}, "max_grade"),
    ({"q": "sleep", "max_grade": "nan"}, "max_grade"),
    ({"q": "sleep", "max_grade": "inf"}, "max_grade"),
    ({"q": "x" * 501}, "q"),
    ({"condition": ["fibromyalgia"] * 21}, "condition"),
    ({"code": ["icd10cm|M79.7"] * 21}, "code"),
    ({"source": ["003_c10700c13901ee51"] * 21}, "source"),
    ({"condition": ""}, "condition"),
    ({"q": "sleep", "qq": "1"}, "qq"),
    ({"q": "sleep", "conditions": "fibromyalgia"}, "conditions"),
], ids=lambda value: str(value)[:40] if isinstance(value, dict) else value)
def test_out_of_range_or_malformed_parameter_is_a_400_naming_it(client, query, parameter):
    body = assert_bad_parameter(client.get("/v1/snippets", query_string=query), parameter)
    assert parameter in body["detail"]


def test_twenty_repeated_values_are_still_accepted(client):
    response = client.get("/v1/snippets", query_string={"condition": ["fibromyalgia"] * 20})
    assert response.status_code == 200


@pytest.mark.parametrize("q", ["", "   ", "\t\n"])
def test_empty_q_without_a_filter_lists_every_snippet_in_source_order(client, q):
    body = client.get("/v1/snippets", query_string={"q": q, "limit": 50}).get_json()
    assert body["total"] == 45
    order = [(r["citation"]["source_id"], r["citation"]["paragraph"]) for r in body["results"]]
    assert order == sorted(order)
    assert client.get("/v1/snippets").get_json()["total"] == 45


# A filter naming something that does not exist is a 404 naming it (like a missing resource).
def test_unknown_condition_slug_is_named(client):
    response = client.get("/v1/snippets", query_string={"q": "sleep", "condition": "diabetes"})
    body = assert_bad_parameter(response, "condition", status=404)
    assert "diabetes" in body["detail"]
    assert [e["parameter"] for e in body["errors"]] == ["condition"]
    assert "diabetes" in body["errors"][0]["detail"]


def test_condition_slugs_are_case_sensitive(client):
    response = client.get("/v1/snippets", query_string={"condition": "Fibromyalgia"})
    assert "Fibromyalgia" in assert_bad_parameter(response, "condition", status=404)["detail"]


def test_unknown_source_is_named(client):
    response = client.get("/v1/snippets", query_string={"source": "999_nope"})
    assert "999_nope" in assert_bad_parameter(response, "source", status=404)["detail"]


@pytest.mark.parametrize(("token", "says"), [
    ("M79.7", "system"),
    ("|M79.7", "system"),
    ("loinc|1234-5", "loinc"),
    ("http://loinc.org|1234-5", "loinc"),
    ("icd10cm|notacode", "ICD-10-CM"),
    ("icd10cm|", "empty"),
    ("icd10cm|M79.7.1", "ICD-10-CM"),
    ("snomed|12", "SNOMED"),
    ("snomed|M79.7", "SNOMED"),
])
def test_bad_code_token_is_a_400_that_says_why(client, token, says):
    body = assert_bad_parameter(client.get("/v1/snippets", query_string={"code": token}), "code")
    assert says in body["detail"]


def test_errors_do_not_echo_markup_unescaped_as_html(client):
    response = client.get("/v1/snippets", query_string={"condition": "<script>x</script>"})
    assert_bad_parameter(response, "condition", status=404)
    assert response.mimetype == "application/problem+json"  # never rendered as text/html


# -- 503: no index ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def empty_client(tmp_path_factory):
    with app_for(tmp_path_factory.mktemp("empty-index")) as app:
        yield app.test_client()


@pytest.mark.parametrize("path", [
    "/readyz",
    "/v1/snippets?q=sleep",
    "/v1/snippets/003_c10700c13901ee51-72b1e422383a",
    "/v1/sources",
    "/v1/sources/003_c10700c13901ee51",
    "/v1/conditions",
    "/v1/caveats",
])
def test_empty_index_dir_gives_503_problems_that_say_why(empty_client, path):
    response = empty_client.get(path)
    body = assert_problem(response, 503)
    assert "no index built yet" in body["detail"]
    assert "snippets build" in body["detail"]
    assert int(response.headers["Retry-After"]) > 0


def test_validation_still_answers_400_while_the_index_is_missing(empty_client):
    # Parameter checks that do not need the index come first.
    assert_bad_parameter(empty_client.get("/v1/snippets?q=sleep&limit=0"), "limit")


def test_liveness_and_docs_do_not_need_the_index(empty_client):
    assert empty_client.get("/healthz").status_code == 200
    assert empty_client.get("/healthz").get_json() == {"status": "ok"}
    assert empty_client.get("/openapi.yaml").status_code == 200
    assert empty_client.get("/docs").status_code == 200


def test_dangling_current_pointer_is_a_503_naming_the_generation(tmp_path):
    os.symlink("gen-20000101T000000000000Z-deadbeef", tmp_path / CURRENT)
    with app_for(tmp_path) as app:
        client = app.test_client()
        body = assert_problem(client.get("/readyz"), 503)
        assert "gen-20000101T000000000000Z-deadbeef" in body["detail"]
        assert_problem(client.get("/v1/snippets?q=sleep"), 503)
        assert client.get("/healthz").status_code == 200
