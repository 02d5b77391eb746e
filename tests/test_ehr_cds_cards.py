"""CDS Hooks cards clinicians can act on: an indicator with signal, a cap with a link to the
rest, a "record as given to the patient" suggestion whose Communication is valid FHIR R4
(fhir.resources' R4B models), plain language for patients, and feedback counted per snippet.

The last test runs against a real gunicorn (SNIPPETS_TEST_SKIP_SERVER=1 skips it).
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid

import pytest
from api_helpers import PUBLIC_URL, SEEDS, assert_problem, follow
from server_helpers import Server, skip_server
from test_ehr_cds_hooks import (
    FIBRO,
    PATIENT_MARKER,
    SERVICE,
    bundle,
    condition,
    hook_request,
)

communication_model = pytest.importorskip("fhir.resources.R4B.communication",
                                          reason="fhir.resources (test extra) is missing")
FEEDBACK = SERVICE + "/feedback"
CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
# The vocabulary's codes (category codes match by prefix), one per condition.
FULL_PROBLEM_LIST = ["M79.7", "G43", "G44.0", "F43.1", "F32", "F41", "F41.1", "G89.2", "I10",
                     "K58", "K30", "G40", "G47.0"]
REPOSITORY_PATH = re.compile(r"\.(?:md|ya?ml|txt|py)\b|\.\./|\bseeds/|\bshared/")


@pytest.fixture
def client(make):
    return make().test_client()


def cards_for(client, conditions, **overrides) -> list[dict]:
    response = client.post(SERVICE, json=hook_request(conditions, **overrides))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["cards"]


def snippet_of(client, card: dict) -> dict:
    return client.get("/v1/snippets/" + card["links"][0]["url"].rsplit("/", 1)[1]).get_json()


def test_indicator_is_warning_only_for_safety_or_conflict_caveats(client):
    cards = cards_for(client, bundle(*[condition(code) for code in FULL_PROBLEM_LIST]))
    indicators = [card["indicator"] for card in cards]
    assert set(indicators) <= {"info", "warning"}
    assert "info" in indicators  # not every card is a warning any more
    for card in cards[:-1]:
        kinds = {c["kind"] for c in snippet_of(client, card)["caveats"]}
        assert (card["indicator"] == "warning") == bool(kinds & {"safety", "conflict"})


def test_cards_are_capped_with_a_last_card_linking_to_the_rest(client):
    cards = cards_for(client, bundle(*[condition(code) for code in FULL_PROBLEM_LIST]))
    assert len(cards) == 10
    *shown, more = cards
    assert all(card["suggestions"] for card in shown)
    assert "suggestions" not in more and more["indicator"] == "info"
    assert re.match(r"^\d+ more patient-education snippets", more["summary"])
    assert more["links"]
    for link in more["links"]:
        assert link["url"].startswith(f"{PUBLIC_URL}/?condition=")
        page = follow(client, link["url"].split("?")[0])
        assert page.status_code == 200
        slug = link["url"].split("condition=")[1]
        assert client.get(f"/?condition={slug}").status_code == 200


def test_each_card_offers_to_record_it_as_given_to_the_patient(client):
    cards = cards_for(client, FIBRO)
    assert cards
    for card in cards:
        uuid.UUID(card["uuid"])
        assert card["selectionBehavior"] == "at-most-one"
        (suggestion,) = card["suggestions"]
        uuid.UUID(suggestion["uuid"])
        assert suggestion["label"] == "Record as given to the patient"
        (action,) = suggestion["actions"]
        assert action["type"] == "create" and action["description"]
        resource = communication_model.Communication.parse_obj(action["resource"])
        assert resource.status == "completed"
        (category,) = resource.category
        assert [(c.system, c.code) for c in category.coding] == [(CATEGORY, "instruction")]
        assert resource.subject.reference == f"Patient/{PATIENT_MARKER}"
        assert resource.sender.reference == "Practitioner/123"
        snippet = snippet_of(client, card)
        text, citation, page = resource.payload
        assert text.contentString == snippet["text"]
        assert snippet["citation"]["title"] in citation.contentString
        assert f"paragraph {snippet['citation']['paragraph']}" in citation.contentString
        assert page.contentAttachment.url == card["links"][0]["url"]
        assert page.contentAttachment.contentType == "text/html"


def test_a_patient_user_gets_the_plain_language_caveats(client):
    catalogue = {c["id"]: c for c in client.get("/v1/caveats").get_json()["caveats"]}
    for user in ("Patient/abc", "RelatedPerson/xyz"):
        cards = cards_for(client, FIBRO, context={"userId": user, "patientId": "abc"})
        for card in cards:
            for caveat in snippet_of(client, card)["caveats"]:
                entry = catalogue[caveat["id"]]
                assert (entry["plain_text"] or entry["text"]) in card["detail"]
                if entry["plain_text"]:
                    assert entry["text"] not in card["detail"]
            assert "sender" not in card["suggestions"][0]["actions"][0]["resource"]


def test_no_repository_path_in_any_card(client):
    cards = cards_for(client, bundle(*[condition(code) for code in FULL_PROBLEM_LIST]))
    assert not REPOSITORY_PATH.search(json.dumps(cards)), REPOSITORY_PATH.search(json.dumps(
        cards))
    caveats = client.get("/v1/caveats").get_json()["caveats"]
    assert not [c["id"] for c in caveats if REPOSITORY_PATH.search(c["source"])]


@pytest.mark.parametrize("body", [
    {"prefetch": {}},
    {"hookInstance": str(uuid.uuid4())},
    {"hook": "patient-view", "hookInstance": str(uuid.uuid4())},
], ids=["no-hook-no-context", "no-hook", "no-context"])
def test_missing_required_fields_are_400_even_without_prefetch(client, body):
    problem = assert_problem(client.post(SERVICE, json=body), 400)
    assert {e["parameter"] for e in problem["errors"]} & {"hook", "context"}


def _feedback(card: str, outcome: str, **extra) -> dict:
    return {"card": card, "outcome": outcome, "outcomeTimestamp": "2026-11-30T10:15:00Z",
            **extra}


def test_feedback_is_counted_per_snippet_without_patient_data(client, make):
    cards = cards_for(client, FIBRO)
    first, second = cards[0], cards[1]
    entries = [
        _feedback(first["uuid"], "accepted",
                  acceptedSuggestions=[{"id": first["suggestions"][0]["uuid"]}]),
        _feedback(second["uuid"], "overridden", overrideReason={
            "reason": {"code": "not-relevant", "system": "https://ehr.example.org/reasons"},
            "userComment": f"{PATIENT_MARKER} does not want it"}),
        _feedback(second["uuid"], "overridden"),
        _feedback(str(uuid.uuid4()), "accepted"),
    ]
    response = client.post(FEEDBACK, json={"feedback": entries})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"recorded": 3, "unknown_cards": [entries[3]["card"]]}
    counts = client.get("/v1/feedback")
    assert counts.headers["Cache-Control"] == "no-store" and "ETag" not in counts.headers
    by_id = {s["snippet_id"]: s for s in counts.get_json()["snippets"]}
    one, two = (by_id[snippet_of(client, c)["id"]] for c in (first, second))
    assert (one["accepted"], one["given_to_patient"], one["overridden"]) == (1, 1, 0)
    assert (two["accepted"], two["overridden"]) == (0, 2)
    assert two["override_reasons"] == {"not-relevant": 1}
    assert one["last_feedback"] == "2026-11-30" and not two["needs_review"]
    # Twice more overridden: the snippet is flagged for review (and listed first).
    client.post(FEEDBACK, json={"feedback": [_feedback(second["uuid"], "overridden")]})
    listed = client.get("/v1/feedback").get_json()["snippets"]
    assert listed[0]["snippet_id"] == two["snippet_id"] and listed[0]["needs_review"]
    # The database holds no patient data: no patient id, no comment.
    database = client.application.config["DATA_DIR"] + "/feedback.sqlite3"
    with sqlite3.connect(database) as db:
        dump = "\n".join(db.iterdump())
    db.close()
    assert PATIENT_MARKER not in dump and "does not want" not in dump


@pytest.mark.parametrize(("body", "parameter"), [
    ({}, "feedback"),
    ({"feedback": []}, "feedback"),
    ({"feedback": [_feedback("nope", "accepted")]}, "feedback.card"),
    ({"feedback": [_feedback(str(uuid.uuid4()), "ignored")]}, "feedback.outcome"),
    ({"feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted"}]},
     "feedback.outcomeTimestamp"),
    ({"feedback": [_feedback(str(uuid.uuid4()), "accepted", outcomeTimestamp="yesterday")]},
     "feedback.outcomeTimestamp"),
], ids=["empty", "no-entries", "card-not-a-uuid", "bad-outcome", "no-timestamp",
        "bad-timestamp"])
def test_malformed_feedback_is_400(client, body, parameter):
    problem = assert_problem(client.post(FEEDBACK, json=body), 400)
    assert parameter in [e["parameter"] for e in problem["errors"]], problem


def test_feedback_for_an_unknown_service_is_404(client):
    assert_problem(client.post("/cds-services/nope/feedback", json={"feedback": [
        _feedback(str(uuid.uuid4()), "accepted")]}), 404)


@skip_server
def test_cards_and_feedback_over_real_http(built_index, tmp_path):
    data = tmp_path / "data"
    with Server(built_index, tmp_path / "server.log", workers=2, seeds_dir=SEEDS,
                env={"SNIPPETS_DATA_DIR": str(data)}) as server:
        post = server.http.post
        cards = post(server.base + SERVICE, json=hook_request(FIBRO), timeout=10).json()["cards"]
        for card in cards:
            page = server.get(card["links"][0]["url"].removeprefix(PUBLIC_URL))
            assert page.status_code == 200
            assert page.headers["Content-Type"].startswith("text/html")
        entries = [_feedback(c["uuid"], "accepted", acceptedSuggestions=[
            {"id": c["suggestions"][0]["uuid"]}]) for c in cards]
        # Feedback may reach another worker than the one that made the cards.
        for entry in entries:
            answer = post(server.base + FEEDBACK, json={"feedback": [entry]}, timeout=10)
            assert answer.json() == {"recorded": 1, "unknown_cards": []}
        counts = server.get("/v1/feedback").json()["snippets"]
        assert sorted((s["accepted"], s["given_to_patient"]) for s in counts) == \
            [(1, 1)] * len(cards)
    assert (data / "feedback.sqlite3").is_file()
