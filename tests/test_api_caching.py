"""Conditional GETs (ETag, 304) and the per-generation result cache."""

from __future__ import annotations

import shutil

from api_helpers import SEEDS, add_article, app_for

from index.build import build
from index.search import IndexReader, SearchQuery

SEARCH = "/v1/snippets?q=sleep&condition=fibromyalgia"


def test_answers_carry_a_validator_and_revalidate_to_304(built_index):
    with app_for(built_index) as app:
        client = app.test_client()
        first = client.get(SEARCH)
        tag = first.headers["ETag"]
        assert tag.startswith('W/"') and first.headers["Cache-Control"] == "private, no-cache"
        again = client.get(SEARCH, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
        # Another question, or another representation, has another validator.
        assert client.get("/v1/snippets?q=sleep").headers["ETag"] != tag
        other = client.get(SEARCH, headers={"If-None-Match": 'W/"something-else"'})
        assert other.status_code == 200 and other.get_json() == first.get_json()
        for path in ("/v1/sources", "/v1/conditions", "/v1/caveats",
                     "/infobutton?mainSearchCriteria.v.c=M79.7"
                     "&mainSearchCriteria.v.cs=2.16.840.1.113883.6.90"):
            response = client.get(path)
            assert response.headers["ETag"], path
            assert client.get(path, headers={"If-None-Match": response.headers["ETag"]}
                              ).status_code == 304, path


def test_errors_and_probes_are_not_cacheable(built_index, tmp_path):
    with app_for(built_index) as app:
        client = app.test_client()
        for path in ("/v1/snippets?limit=0", "/v1/snippets/nope", "/healthz", "/readyz"):
            response = client.get(path)
            assert "ETag" not in response.headers, path
    with app_for(tmp_path) as app:  # no index: 503, nothing to validate against
        assert "ETag" not in app.test_client().get(SEARCH).headers


def test_a_new_generation_invalidates_validators_and_cached_results(tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    index_dir = tmp_path / "index"
    build(seeds, index_dir)
    with app_for(index_dir) as app:
        client = app.test_client()
        old = client.get("/v1/snippets?q=lavender")
        assert old.get_json()["total"] == 0
        add_article(seeds, "905_lavender", "Lavender", "Lavender oil smells calming to some.")
        build(seeds, index_dir)
        new = client.get("/v1/snippets?q=lavender", headers={"If-None-Match": old.headers["ETag"]})
        assert new.status_code == 200 and new.get_json()["total"] == 1
        assert new.headers["ETag"] != old.headers["ETag"]


def test_repeated_search_is_answered_from_the_cache(built_index):
    reader = IndexReader(built_index)
    try:
        gen = reader.generation()
        query = SearchQuery("voice changes", limit=5)
        first = gen.search(query)
        assert gen.search(SearchQuery("voice  changes", limit=5)) is first  # same question
        assert gen.search(SearchQuery("voice changes", limit=6)) is not first
    finally:
        reader.close()


def test_repeated_get_is_served_from_the_response_cache(built_index, monkeypatch):
    with app_for(built_index) as app:
        client = app.test_client()
        first = client.get(SEARCH)
        gen = app.extensions["snippets_index"].generation()

        def no_more_searching(*args, **kwargs):
            raise AssertionError("searched again")

        monkeypatch.setattr(gen, "search", no_more_searching)
        again = client.get(SEARCH)
        assert again.status_code == 200 and again.data == first.data
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_response_cache_can_be_turned_off(built_index):
    from service import create_app

    app = create_app({"INDEX_DIR": str(built_index), "RESPONSE_CACHE_MB": 0})
    try:
        client = app.test_client()
        client.get(SEARCH)
        assert app.extensions["snippets_responses"].get(client.get(SEARCH).headers["ETag"]
                                                        .removeprefix('W/"').rstrip('"')) is None
    finally:
        app.extensions["snippets_index"].close()
