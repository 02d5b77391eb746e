"""A running app picks up a newly built index generation on its next request, no restart."""

from __future__ import annotations

import shutil

from api_helpers import SEEDS, add_article, app_for, assert_citation_matches, manifest

from index.build import build

NEW_SOURCE = "005_test"
NEW_TEXT = ("Gentle stretching before bedtime, the zanzibarine routine, helped some readers "
            "relax their shoulders and fall asleep sooner.")


def test_new_generation_is_served_without_a_restart(tmp_path):
    seeds = tmp_path / "seeds"
    index_dir = tmp_path / "index"
    shutil.copytree(SEEDS, seeds)
    first = build(seeds, index_dir).manifest

    with app_for(index_dir) as app:
        client = app.test_client()
        before = client.get("/v1/snippets", query_string={"q": "zanzibarine"}).get_json()
        assert before["total"] == 0
        assert before["index"]["version"] == first["version"]
        ready = client.get("/readyz").get_json()
        assert (ready["generation"], ready["sources"]) == (first["generation"], 5)

        add_article(seeds, NEW_SOURCE, "Stretching Test Article", NEW_TEXT)
        second = build(seeds, index_dir).manifest
        assert second["version"] != first["version"]
        assert manifest(index_dir)["generation"] == second["generation"]

        after = client.get("/v1/snippets", query_string={"q": "zanzibarine"}).get_json()
        assert after["index"]["version"] == second["version"]
        assert after["total"] == 1
        hit = after["results"][0]
        assert hit["text"] == NEW_TEXT
        assert hit["citation"]["source_id"] == NEW_SOURCE
        assert "<mark>zanzibarine</mark>" in hit["highlight"]
        assert_citation_matches(hit, seeds)

        ready = client.get("/readyz").get_json()
        assert ready["version"] == second["version"]
        assert ready["generation"] == second["generation"]
        assert ready["sources"] == 6
        assert ready["snippets"] == first["counts"]["snippets"] + 1

        sources = client.get("/v1/sources").get_json()
        assert sources["total"] == 6
        assert sources["index"]["version"] == second["version"]
        assert client.get(f"/v1/sources/{NEW_SOURCE}").status_code == 200
        assert client.get(f"/v1/snippets/{hit['id']}").get_json()["text"] == NEW_TEXT

        # The old answers are still there, from the new generation.
        acceptance = client.get("/v1/snippets", query_string={
            "q": "sleep", "condition": "fibromyalgia"}).get_json()
        assert acceptance["results"][0]["citation"]["source_id"] == "003_c10700c13901ee51"
        assert acceptance["index"]["version"] == second["version"]


def test_rebuilding_unchanged_seeds_keeps_snippet_ids_and_version(tmp_path, built_index):
    index_dir = tmp_path / "index"
    rebuilt = build(SEEDS, index_dir).manifest
    assert rebuilt["version"] == manifest(built_index)["version"]
    with app_for(built_index) as old_app, app_for(index_dir) as new_app:
        old = old_app.test_client().get("/v1/sources/003_c10700c13901ee51").get_json()
        new = new_app.test_client().get("/v1/sources/003_c10700c13901ee51").get_json()
    assert new["snippet_ids"] == old["snippet_ids"]


def test_index_built_after_start_is_picked_up(tmp_path):
    # An app started before any index exists answers 503, then serves once a build lands.
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    with app_for(index_dir) as app:
        client = app.test_client()
        assert client.get("/readyz").status_code == 503
        built = build(SEEDS, index_dir).manifest
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.get_json()["version"] == built["version"]
        assert client.get("/v1/snippets", query_string={"q": "sleep"}).status_code == 200
