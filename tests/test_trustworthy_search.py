"""Right or nothing, everyday wording, honest suggestions, one order: over real HTTP (gunicorn).

Each test is a question a clinician or patient asks, and what they would notice in the answer.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from server_helpers import Server, skip_server

from index.seeds import load

pytestmark = skip_server

SEARCH = "/v1/snippets"
SLEEP = "003_c10700c13901ee51-72b1e422383a"  # "improve sleep quality ... fibromyalgia"
SAFETY = {"000_e120aca91647fdde-122c3c2a07d5", "004_d463bc660c48071c-bcbd11ab3ac5"}
DISCOMFORT = {"000_e120aca91647fdde-122c3c2a07d5", "004_d463bc660c48071c-bcbd11ab3ac5"}
GUT = "002_379d7adb61d8f004-62d3ed4f475c"  # "reduce gastrointestinal issues"


@pytest.fixture(scope="module")
def server(tmp_path_factory, built_index):
    tmp = tmp_path_factory.mktemp("trust")
    with Server(built_index, tmp / "server.log", workers=1) as srv:
        srv.wait_until_up()
        yield srv


def ask(server, q: str, **params):
    response = server.get(SEARCH, params={"q": q, **params})
    assert response.status_code == 200, response.text
    return response.json()


def result_ids(body) -> list[str]:
    return [r["id"] for r in body["results"]]


@pytest.mark.parametrize(("q", "missing"), [
    ("type 2 diabetes mellitus without complications", "diabetes"),
    ("knee pain", "knee"),
    ("lower back pain", "back"),
    ("shingles vaccine side effects", "shingles"),
    ("recovery after hip replacement", "hip"),
])
def test_a_subject_the_index_does_not_cover_gets_an_empty_answer_naming_it(server, q, missing):
    body = ask(server, q)
    assert body["total"] == 0 and body["results"] == []
    assert missing in body["not_found"]
    assert body["suggestion"] is None  # real words are never "corrected"


def test_generic_words_never_fill_a_page_on_their_own(server):
    # "lower" is in the hypertension paragraph ("lower blood pressure"): no answer to this.
    assert ask(server, "lower back pain")["results"] == []
    # A narrow question about a covered subject still gets a full page, every result with
    # the subject, the all-word matches first.
    body = ask(server, "does vns help sleep")
    assert len(body["results"]) == 10 and body["match"] == "any"
    assert body["results"][0]["id"] == SLEEP
    assert all("vns" in r["matched"] for r in body["results"])
    assert "sleep" not in body["results"][-1]["matched"]


def test_pages_are_in_the_order_of_the_scores_shown(server):
    for q in ("how does vns work", "vns fatigue", "how is the vns device implanted"):
        first = ask(server, q, limit=5)
        second = ask(server, q, limit=5, offset=5)
        scores = [r["score"] for r in first["results"] + second["results"]]
        assert scores == sorted(scores, reverse=True), q
        assert not set(result_ids(first)) & set(result_ids(second))


def test_each_result_says_which_concepts_it_matched(server):
    body = ask(server, "vagus nerve stimulation fibromyalgia sleep")
    top = body["results"][0]
    assert top["id"] == SLEEP
    assert top["matched"] == ["vagus nerve stimulation", "fibromyalgia", "sleep"]
    assert all(set(r["matched"]) <= {"vagus nerve stimulation", "fibromyalgia", "sleep"}
               for r in body["results"])


@pytest.mark.parametrize("q", ["fibromyalgía", "\ufb01bromyalgia", "FIBROMYALGIA",
                               "ｆｉｂｒｏｍｙａｌｇｉａ"])
def test_accents_ligatures_and_width_are_folded(server, q):
    assert result_ids(ask(server, q)) == result_ids(ask(server, "fibromyalgia"))


def test_joined_and_hyphenated_prefixes_are_one_word(server):
    joined = ask(server, "noninvasive")
    hyphenated = ask(server, "non-invasive")
    assert joined["total"] == hyphenated["total"] == 2
    assert result_ids(joined) == result_ids(hyphenated)
    assert "<mark>non-invasive</mark>" in joined["results"][0]["highlight"].lower()
    # Other hyphens separate words: "side-effects" is "side effects".
    assert result_ids(ask(server, "side-effects")) == result_ids(ask(server, "side effects"))


def test_word_families_the_stemmer_leaves_apart_are_joined(server):
    # The seeds say "safety", never "safe".
    body = ask(server, "is it safe")
    assert set(result_ids(body)) == SAFETY
    assert all("safe" in r["matched"] for r in body["results"])


def test_lay_words_find_the_clinical_ones_and_exact_wording_ranks_first(server):
    hurt = ask(server, "does vns hurt")
    assert set(result_ids(hurt)[:2]) == DISCOMFORT
    assert ask(server, "vns stomach")["results"][0]["id"] == GUT
    # Exact wording first: "discomfort" typed outranks what "hurt" finds through it.
    exact = ask(server, "vns discomfort")
    widened = ask(server, "vns hurt")
    assert exact["results"][0]["score"] > widened["results"][0]["score"]
    # The seeds never say "tiredness": it finds "fatigue".
    assert ask(server, "tiredness fibromyalgia")["results"][0]["id"] == SLEEP


def test_every_lay_term_names_its_public_source(seeds_dir):
    terms = load(seeds_dir).lay_terms
    assert len(terms) >= 10
    for term in terms:
        assert re.search(r"https?://\S+", term["source"]), term["id"]
        assert not re.search(r"seeds/|\.md\b|\.yaml\b", term["source"]), term["id"]


@pytest.mark.parametrize(("q", "corrected"), [
    ("fibromyalga", "fibromyalgia"), ("migrane", "migraines"), ("vagas nerve", "vagus nerve")])
def test_real_misspellings_are_corrected(server, q, corrected):
    body = ask(server, q)
    assert body["suggestion"] == corrected
    assert ask(server, corrected)["total"] > body["total"]


@pytest.mark.parametrize("q", ["is it life", "knee pain", "back pain", "need pain", "neck"])
def test_correctly_spelled_words_are_never_replaced(server, q):
    assert ask(server, q)["suggestion"] is None


def test_question_kind_ranks_the_section_that_answers_it(server):
    # The seeds' heading "How Vagus Nerve Stimulation Works" answers "how does it work".
    body = ask(server, "how does vns work", limit=3)
    assert any(r["citation"]["section"] == "How Vagus Nerve Stimulation Works"
               for r in body["results"][:2])


def test_infobutton_display_name_of_an_uncovered_condition_gets_an_empty_feed(server):
    response = server.get("/infobutton", params={
        "mainSearchCriteria.v.c": "E11.9", "mainSearchCriteria.v.cs": "2.16.840.1.113883.6.90",
        "mainSearchCriteria.v.dn": "Type 2 diabetes mellitus without complications",
        "knowledgeResponseType": "text/xml"})
    assert response.status_code == 200
    feed = ET.fromstring(response.content)
    atom = "{http://www.w3.org/2005/Atom}"
    assert feed.findall(f"{atom}entry") == []
    assert "diabetes" in ET.tostring(feed, encoding="unicode")


def test_cds_hooks_gives_no_card_for_an_uncovered_condition_and_says_why(server):
    icd10cm = "http://hl7.org/fhir/sid/icd-10-cm"

    def problem(code: str, display: str) -> dict:
        return {"resource": {
            "resourceType": "Condition", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": icd10cm, "code": code, "display": display}]}}}

    body = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/1", "patientId": "p1"},
            "prefetch": {"conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [
                problem("E11.9", "Type 2 diabetes mellitus without complications"),
                problem("M79.7", "Fibromyalgia")]}}}
    response = server.http.post(server.base + "/cds-services/patient-education", json=body,
                                timeout=10)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["cards"] and all("Fibromyalgia" in c["summary"] for c in answer["cards"]
                                   if "more" not in c["summary"].lower())
    assert answer["extension"]["snippets-not-covered"]["codes"] == ["icd10cm|E11.9"]
