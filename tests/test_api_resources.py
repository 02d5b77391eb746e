"""The read-only resources: snippets by id, sources, conditions, caveats, health, spec and docs."""

from __future__ import annotations

import hashlib
import html
import re
from collections import Counter
from html.parser import HTMLParser

import pytest
import yaml
from api_helpers import SEEDS, SPEC_FILE, assert_citation_matches, manifest

SOURCE_COUNTS = {
    "000_e120aca91647fdde": 8,
    "001_38169ab113aa31ef": 13,
    "002_379d7adb61d8f004": 9,
    "003_c10700c13901ee51": 7,
    "004_d463bc660c48071c": 8,
}


@pytest.fixture(scope="module")
def sources(client):
    response = client.get("/v1/sources")
    assert response.status_code == 200
    return response.get_json()


@pytest.fixture(scope="module")
def all_snippets(client, sources):
    """Every snippet by id, fetched one by one through /v1/sources/{id} and /v1/snippets/{id}."""
    snippets = {}
    for source in sources["sources"]:
        detail = client.get(f"/v1/sources/{source['id']}").get_json()
        for snippet_id in detail["snippet_ids"]:
            response = client.get(f"/v1/snippets/{snippet_id}")
            assert response.status_code == 200
            snippets[snippet_id] = response.get_json()
    return snippets


# -- sources -------------------------------------------------------------------------------

def test_sources_lists_the_five_seed_articles_with_their_snippet_counts(sources, built_index):
    assert sources["total"] == 5
    assert {s["id"]: s["snippet_count"] for s in sources["sources"]} == SOURCE_COUNTS
    assert sources["index"]["version"] == manifest(built_index)["version"]


def test_sources_do_not_invent_provenance_for_the_seeds(sources):
    for source in sources["sources"]:
        assert source["url"] is None
        assert source["publisher"] is None
        assert source["retrieved"] is None
        assert source["title"]
        assert source["last_reviewed"] == "2026-11-21"


def test_source_text_sha256_matches_the_file(sources):
    for source in sources["sources"]:
        data = (SEEDS / f"{source['id']}.txt").read_bytes()
        assert source["text_sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("source_id", sorted(SOURCE_COUNTS))
def test_source_detail_lists_its_snippet_ids_in_reading_order(client, source_id):
    response = client.get(f"/v1/sources/{source_id}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["id"] == source_id
    assert body["snippet_count"] == SOURCE_COUNTS[source_id] == len(body["snippet_ids"])
    assert len(set(body["snippet_ids"])) == len(body["snippet_ids"])
    assert all(sid.startswith(f"{source_id}-") for sid in body["snippet_ids"])
    assert body["url"] is None and body["publisher"] is None and body["retrieved"] is None


# -- snippets by id --------------------------------------------------------------------------

def test_snippet_neighbours_follow_the_source_reading_order(client, sources, all_snippets):
    for source in sources["sources"]:
        ids = client.get(f"/v1/sources/{source['id']}").get_json()["snippet_ids"]
        for position, snippet_id in enumerate(ids):
            snippet = all_snippets[snippet_id]
            assert snippet["id"] == snippet_id
            assert snippet["previous_id"] == (ids[position - 1] if position else None)
            assert snippet["next_id"] == (ids[position + 1] if position + 1 < len(ids) else None)
            assert snippet["citation"]["source_id"] == source["id"]
            assert snippet["citation"]["paragraph"] == position + 1


def test_every_snippet_cites_its_exact_span_and_hash(all_snippets):
    assert len(all_snippets) == sum(SOURCE_COUNTS.values())
    for snippet in all_snippets.values():
        assert_citation_matches(snippet)
        assert snippet["citation"]["url"] is None
        assert snippet["citation"]["retrieved"] is None


def test_snippet_by_id_has_plain_escaped_highlight_and_no_score(all_snippets):
    for snippet in all_snippets.values():
        assert snippet["score"] is None
        assert "<" not in snippet["highlight"]
        assert html.unescape(snippet["highlight"]) == snippet["text"]


def test_every_snippet_carries_the_unattributed_source_caveat(all_snippets):
    for snippet in all_snippets.values():
        ids = [c["id"] for c in snippet["caveats"]]
        assert "source-unattributed" in ids
        for caveat in snippet["caveats"]:
            assert caveat["source"] and caveat["text"]
            assert caveat["severity"] in ("info", "warning")


def test_fibromyalgia_vns_snippets_carry_the_investigational_caveat(all_snippets):
    tagged = [s for s in all_snippets.values() if "fibromyalgia" in s["conditions"]
              and re.search(r"\b(vagus|VNS)\b", s["text"], re.IGNORECASE)]
    assert tagged
    for snippet in tagged:
        assert "investigational-fibromyalgia" in [c["id"] for c in snippet["caveats"]]


# -- conditions ------------------------------------------------------------------------------

def test_conditions_list_codes_counts_and_unchecked_codes(client, built_index):
    body = client.get("/v1/conditions").get_json()
    by_slug = {c["slug"]: c for c in body["conditions"]}
    assert body["total"] == len(body["conditions"])
    assert body["codes_last_checked"] is None
    assert body["codes_source"]
    assert by_slug["fibromyalgia"]["codes"] == {"icd10cm": ["M79.7"], "snomed": ["203082005"]}
    assert by_slug["ptsd"]["codes"]["icd10cm"] == ["F43.1"]
    assert "PTSD" in by_slug["ptsd"]["abbreviations"]
    for slug in ("fibromyalgia", "migraine", "cluster-headache", "ptsd", "depression", "anxiety",
                 "chronic-pain", "hypertension", "ibs", "dyspepsia", "epilepsy", "insomnia"):
        assert slug in by_slug
    counts = manifest(built_index)["counts"]["per_condition"]
    assert {slug: c["snippet_count"] for slug, c in by_slug.items()} == counts
    assert by_slug["fibromyalgia"]["snippet_count"] == 10


def test_condition_snippet_counts_equal_what_browsing_the_condition_finds(client):
    for condition in client.get("/v1/conditions").get_json()["conditions"]:
        found = client.get("/v1/snippets", query_string={"condition": condition["slug"],
                                                        "limit": 1}).get_json()
        assert found["total"] == condition["snippet_count"], condition["slug"]


# -- caveats ---------------------------------------------------------------------------------

def test_caveats_each_have_a_source_and_review_date(client):
    body = client.get("/v1/caveats").get_json()
    assert body["total"] == len(body["caveats"]) > 0
    for caveat in body["caveats"]:
        assert caveat["source"].strip()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", caveat["last_reviewed"])
        assert caveat["kind"] in ("disclaimer", "evidence", "regulatory", "safety", "conflict",
                                  "wording")
        assert caveat["severity"] in ("info", "warning")
        assert caveat["scope"] in ("snippet", "response")
        assert {"conditions", "sources", "snippets", "patterns"} <= set(caveat["applies_to"])
    by_id = {c["id"]: c for c in body["caveats"]}
    assert by_id["general-disclaimer"]["scope"] == "response"
    assert by_id["general-disclaimer"]["kind"] == "disclaimer"
    assert by_id["investigational-fibromyalgia"]["severity"] == "warning"


def test_caveat_snippet_counts_match_the_snippets_that_carry_them(client, all_snippets):
    carried = Counter(c["id"] for s in all_snippets.values() for c in s["caveats"])
    for caveat in client.get("/v1/caveats").get_json()["caveats"]:
        if caveat["scope"] == "snippet":
            assert caveat["snippet_count"] == carried.get(caveat["id"], 0), caveat["id"]
        else:
            assert caveat["id"] not in carried


# -- health ----------------------------------------------------------------------------------

def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_the_generation_in_service(client, built_index):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    expected = manifest(built_index)
    assert body["status"] == "ready"
    assert body["version"] == expected["version"]
    assert body["generation"] == expected["generation"]
    assert body["built_at"] == expected["built_at"]
    assert body["sources"] == 5
    assert body["snippets"] == sum(SOURCE_COUNTS.values())


# -- spec and docs ---------------------------------------------------------------------------

def test_openapi_yaml_is_the_committed_file_byte_for_byte(client):
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.get_data() == SPEC_FILE.read_bytes()
    spec = yaml.safe_load(response.get_data(as_text=True))
    assert spec["openapi"].startswith("3.1")
    assert "/v1/snippets" in spec["paths"]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if attributes.get(name):
                self.urls.append((tag, name, attributes[name]))
        if tag == "link" and "stylesheet" in (attributes.get("rel") or ""):
            self.stylesheets.append(attributes["href"])


def test_docs_page_renders_the_spec_with_swagger_ui_from_local_assets(client):
    # Swagger UI draws the operations in the browser (tests/test_pages_browser.py checks each
    # one is shown); here: the page loads only this server's files, and the spec it reads.
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert 'data-spec-url="/openapi.json"' in page
    spec = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    assert client.get("/openapi.json").get_json() == spec
    parser = _Links()
    parser.feed(page)
    assert parser.urls
    for tag, name, url in parser.urls:
        assert not re.match(r"^\s*(https?:)?//", url, re.IGNORECASE), (tag, name, url)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page)
    assert parser.stylesheets
    for href in parser.stylesheets:
        with client.get(href) as css:
            assert css.status_code == 200, href
            assert css.mimetype == "text/css"
            data = css.get_data()
        assert data
        # No stylesheet fetches from elsewhere (Swagger UI's inlines its icons as data: URIs).
        assert not re.search(rb"@import|url\(\s*['\"]?(https?:)?//", data, re.IGNORECASE)
