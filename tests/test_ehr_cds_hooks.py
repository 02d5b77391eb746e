"""CDS Hooks: discovery and the patient-view service (cards for problem-list Conditions).

The last tests start a real gunicorn server (a few seconds); SNIPPETS_TEST_SKIP_SERVER=1 skips
them.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
from api_helpers import (
    ICD10CM,
    PUBLIC_URL,
    SEEDS,
    SNOMED,
    app_for,
    assert_problem,
    follow,
    make_app,
)
from log_helpers import every_logger_captured
from server_helpers import Server, skip_server

SERVICE = "/cds-services/patient-education"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
PATIENT_MARKER = "PATIENT-ZEBRA-7731"
DISPLAY_MARKER = "Zebrafinch quokka myalgia"


def condition(code: str, system: str = ICD10CM, display: str = "Fibromyalgia",
              clinical: str | None = "active", verification: str | None = "confirmed") -> dict:
    resource = {"resourceType": "Condition", "id": uuid.uuid4().hex[:8],
                "category": [{"coding": [{"code": "problem-list-item"}]}],
                "code": {"coding": [{"system": system, "code": code, "display": display}],
                         "text": display},
                "subject": {"reference": f"Patient/{PATIENT_MARKER}"}}
    if clinical:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    if verification:
        resource["verificationStatus"] = {"coding": [{"system": VERIFICATION,
                                                      "code": verification}]}
    return resource


def bundle(*resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r} for r in resources]}


def hook_request(conditions, patient: str = PATIENT_MARKER, **overrides) -> dict:
    body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "fhirServer": "https://ehr.example.org/fhir",
            "context": {"userId": "Practitioner/123", "patientId": patient},
            "prefetch": {"conditions": conditions}}
    body.update(overrides)
    return body


FIBRO = bundle(condition("M79.7", display=DISPLAY_MARKER))


@pytest.fixture(scope="module")
def client(built_index):
    with app_for(built_index) as app:
        # Unexpected errors become 500 problems, as an EHR would see them (not test exceptions).
        app.config["PROPAGATE_EXCEPTIONS"] = False
        yield app.test_client()


def cards_for(client, conditions) -> list[dict]:
    response = client.post(SERVICE, json=hook_request(conditions))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "application/json"
    return response.get_json()["cards"]


def snippet_ids(cards: list[dict]) -> list[str]:
    return [card["links"][0]["url"].rsplit("/", 1)[1] for card in cards]


def labels(cards: list[dict]) -> list[str]:
    return [card["summary"].split(":", 1)[0].removeprefix("Patient education, ")
            for card in cards]


# -- discovery ---------------------------------------------------------------------------------

def test_discovery_lists_a_patient_view_service_with_a_problem_list_prefetch(client):
    response = client.get("/cds-services")
    assert response.status_code == 200 and response.content_type == "application/json"
    services = response.get_json()["services"]
    assert len(services) == 1
    service = services[0]
    assert service["hook"] == "patient-view"
    assert service["id"] == "patient-education"
    assert service["title"] and service["description"]
    template = service["prefetch"]["conditions"]
    assert template.startswith("Condition?")
    assert "patient={{context.patientId}}" in template
    assert "category=problem-list-item" in template
    assert "clinical-status=active" in template
    # The advertised id is the one that answers.
    assert client.post(f"/cds-services/{service['id']}",
                       json=hook_request(bundle())).status_code == 200


# -- cards -------------------------------------------------------------------------------------

def test_active_fibromyalgia_condition_gets_cited_caveated_cards(client):
    cards = cards_for(client, FIBRO)
    assert 1 <= len(cards) <= 2
    assert len({card["uuid"] for card in cards}) == len(cards)
    for card in cards:
        uuid.UUID(card["uuid"])
        assert len(card["summary"]) <= 140
        assert card["summary"].startswith("Patient education, Fibromyalgia: ")
        # The link opens the snippet's page for people (HTML), under the public URL.
        (link,) = card["links"]
        assert link["type"] == "absolute" and link["label"]
        assert link["url"].startswith(f"{PUBLIC_URL}/snippets/")
        page = follow(client, link["url"])
        assert page.status_code == 200 and page.mimetype == "text/html"
        snippet_id = link["url"].rsplit("/", 1)[1]
        snippet = client.get(f"/v1/snippets/{snippet_id}").get_json()
        assert "fibromyalgia" in snippet["conditions"]
        citation = snippet["citation"]
        assert card["indicator"] == ("warning" if any(c["kind"] in ("safety", "conflict")
                                                      for c in snippet["caveats"]) else "info")
        # Markdown detail: the snippet quoted, its caveats, its citation.
        detail = card["detail"]
        for line in snippet["text"].splitlines():
            assert f"> {line}" in detail
        assert snippet["caveats"]
        for caveat in snippet["caveats"]:
            assert caveat["text"] in detail
            assert f"**{caveat['severity']}** ({caveat['kind']})" in detail
        assert citation["title"] in detail
        assert f"paragraph {citation['paragraph']}" in detail
        assert f"characters {citation['char_start']}-{citation['char_end']}" in detail
        assert citation["text_sha256"][:12] in detail
        # Source: the article, with a URL that answers (our page, as the seeds have none).
        assert card["source"]["label"] == citation["title"]
        assert card["source"]["url"] == f"{PUBLIC_URL}/sources/{citation['source_id']}"
        source = follow(client, card["source"]["url"])
        assert source.status_code == 200 and source.mimetype == "text/html"


def test_fibromyalgia_cards_carry_the_investigational_caveat(client):
    cards = cards_for(client, FIBRO)
    assert all("VNS is not an approved treatment for fibromyalgia" in card["detail"]
               for card in cards)


def test_summary_is_cut_at_a_word_with_an_ellipsis(client):
    for card in cards_for(client, FIBRO):
        snippet_id = card["links"][0]["url"].rsplit("/", 1)[1]
        snippet = client.get(f"/v1/snippets/{snippet_id}").get_json()
        full = f"Patient education, Fibromyalgia: {snippet['text']}"
        if len(full) <= 140:
            assert card["summary"] == full
        else:
            assert card["summary"].endswith("\u2026")
            kept = card["summary"][:-1]
            assert full.startswith(kept) and full[len(kept)] == " "


@pytest.mark.parametrize(("system", "code"), [
    (SNOMED, "203082005"),
    ("urn:oid:2.16.840.1.113883.6.90", "M79.7"),
    (ICD10CM, "m79.7"),
], ids=["snomed", "icd10cm-oid-urn", "lower-case"])
def test_other_codings_of_fibromyalgia_get_the_same_cards(client, system, code):
    expected = snippet_ids(cards_for(client, FIBRO))
    assert snippet_ids(cards_for(client, bundle(condition(code, system)))) == expected


def test_a_single_condition_resource_instead_of_a_bundle_is_a_400(client):
    # The prefetch template is a FHIR search, whose result is always a Bundle.
    response = client.post(SERVICE, json=hook_request(condition("M79.7")))
    problem = assert_problem(response, 400)
    assert "prefetch.conditions.resourceType" in [e["parameter"] for e in problem["errors"]]


def test_at_most_two_cards_per_condition(client):
    # Fibromyalgia has more than two snippets; only two become cards.
    search = client.get("/v1/snippets?condition=fibromyalgia&limit=50").get_json()
    assert search["total"] > 2
    codes = ["M79.7", "G43.909", "F43.10", "F32.9"]
    cards = cards_for(client, bundle(*[condition(code) for code in codes]))
    per_label: dict[str, int] = {}
    for label in labels(cards):
        per_label[label] = per_label.get(label, 0) + 1
    assert per_label["Fibromyalgia"] == 2
    assert len(per_label) == len(codes)
    assert max(per_label.values()) <= 2


def test_the_same_condition_coded_twice_gets_its_cards_once(client):
    expected = snippet_ids(cards_for(client, FIBRO))
    both = condition("M79.7")
    both["code"]["coding"].append({"system": SNOMED, "code": "203082005"})
    cards = cards_for(client, bundle(both, condition("M79.7"), condition("203082005", SNOMED)))
    assert snippet_ids(cards) == expected


@pytest.mark.parametrize(("clinical", "verification"), [
    ("inactive", "confirmed"),
    ("resolved", "confirmed"),
    ("remission", "confirmed"),
    ("active", "refuted"),
    ("active", "entered-in-error"),
])
def test_inactive_and_refuted_conditions_are_ignored(client, clinical, verification):
    ignored = condition("M79.7", clinical=clinical, verification=verification)
    assert cards_for(client, bundle(ignored)) == []
    # Next to an active condition, only that one gets cards.
    cards = cards_for(client, bundle(ignored, condition("G43.909", display="Migraine")))
    assert cards and set(labels(cards)) == {"Migraine"}


def test_conditions_without_status_count_as_active(client):
    unstated = condition("M79.7", clinical=None, verification=None)
    assert snippet_ids(cards_for(client, bundle(unstated))) == snippet_ids(
        cards_for(client, FIBRO))


@pytest.mark.parametrize("conditions", [
    bundle(),
    bundle(condition("Z00.00")),
    bundle(condition("M79.7", system="http://loinc.org")),
    bundle(condition("M79.7", system="http://hl7.org/fhir/sid/icd-10")),
    bundle({"resourceType": "Condition", "code": {"text": "fibromyalgia"}}),
    bundle({"resourceType": "Observation", "code": {"coding": [{"system": ICD10CM,
                                                                "code": "M79.7"}]}}),
], ids=["empty-bundle", "unmapped-code", "other-system", "icd10-not-cm", "text-only",
        "not-a-condition"])
def test_nothing_to_suggest_is_an_empty_card_list(client, conditions):
    assert cards_for(client, conditions) == []


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {k: v for k, v in hook_request(FIBRO).items() if k != "prefetch"},
    hook_request(FIBRO, prefetch=None),
    hook_request(FIBRO, prefetch={}),
    hook_request(None),
], ids=["no-prefetch", "prefetch-null", "prefetch-empty", "conditions-null"])
def test_missing_prefetch_is_412(client, body):
    problem = assert_problem(client.post(SERVICE, json=body), 412)
    assert "prefetch.conditions" in problem["detail"]


def _without_context_field(name: str) -> dict:
    body = hook_request(FIBRO)
    del body["context"][name]
    return body


MALFORMED = [
    (b"{\"hook\": \"patient-view\", \"context\": {\"patientId\": \"" + PATIENT_MARKER.encode()
     + b"\"", "json", "Invalid JSON"),
    ({k: v for k, v in hook_request(FIBRO).items() if k != "hookInstance"}, "hookInstance",
     "Missing data"),
    ({k: v for k, v in hook_request(FIBRO).items() if k != "context"}, "context",
     "Missing data"),
    (_without_context_field("patientId"), "context.patientId", "Missing data"),
    (hook_request(FIBRO, hook="order-select"), "hook", "patient-view"),
    (hook_request(FIBRO, hookInstance=5), "hookInstance", "string"),
    (hook_request(FIBRO, context=[PATIENT_MARKER]), "context", "Invalid"),
    (hook_request(FIBRO, prefetch="conditions"), "prefetch", "Invalid input type"),
    (hook_request([condition("M79.7")]), "prefetch.conditions", "Invalid input type"),
    (hook_request({"resourceType": "Patient", "id": PATIENT_MARKER}),
     "prefetch.conditions.resourceType", "Bundle"),
    (hook_request({"entry": []}), "prefetch.conditions.resourceType", "Missing data"),
    (hook_request({"resourceType": "Bundle", "entry": {"resource": condition("M79.7")}}),
     "prefetch.conditions.entry", "Not a valid list"),
    ([hook_request(FIBRO)], "_schema", "Invalid input type"),
]


@pytest.mark.parametrize(("body", "parameter", "says"), MALFORMED, ids=[
    "invalid-json", "no-hookInstance", "no-context", "no-patientId", "other-hook",
    "hookInstance-not-a-string", "context-not-an-object", "prefetch-not-an-object",
    "conditions-a-list", "conditions-a-patient", "conditions-without-resourceType",
    "entry-not-a-list", "body-an-array"])
def test_malformed_hook_requests_are_400_naming_what_is_wrong(client, body, parameter, says):
    if isinstance(body, bytes):
        response = client.post(SERVICE, data=body, content_type="application/json")
    else:
        response = client.post(SERVICE, json=body)
    problem = assert_problem(response, 400)
    assert parameter in [e["parameter"] for e in problem["errors"]], problem
    assert problem["detail"].startswith(f"{parameter}:")
    assert says in problem["detail"]
    # Nothing the EHR sent about the patient comes back in the error.
    assert PATIENT_MARKER not in response.get_data(as_text=True)


def test_missing_patient_id_is_named_in_the_problem(client):
    problem = assert_problem(client.post(SERVICE, json=_without_context_field("patientId")), 400)
    assert "patientId" in problem["detail"]


@pytest.mark.parametrize("broken", [
    {"coding": 5},
    {"clinicalStatus": {"coding": 5}},
    {"clinicalStatus": {"coding": [{"system": CLINICAL, "code": ["active"]}]}},
    {"verificationStatus": {"coding": [{"system": VERIFICATION, "code": {"x": 1}}]}},
], ids=["code-coding-a-number", "status-coding-a-number", "status-code-a-list",
        "verification-code-an-object"])
def test_malformed_condition_content_is_not_a_server_error(client, broken):
    resource = condition("M79.7")
    if "coding" in broken:
        resource["code"] = broken
    else:
        resource.update(broken)
    response = client.post(SERVICE, json=hook_request(bundle(resource)))
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert_problem(response, 400)


def test_unknown_service_id_is_404(client):
    problem = assert_problem(client.post("/cds-services/medication-advice",
                                         json=hook_request(FIBRO)), 404)
    assert "/cds-services" in problem["detail"]


def test_service_answers_post_only(client):
    problem = assert_problem(client.get(SERVICE), 405)
    assert problem["detail"]


def _padded(body: dict, size: int) -> bytes:
    """`body` as JSON, padded with whitespace to exactly `size` bytes."""
    data = json.dumps(body).encode()
    assert len(data) < size
    return data[:-1] + b" " * (size - len(data)) + b"}"


def test_body_over_the_default_limit_is_413_and_at_the_limit_is_read(client):
    at_limit = _padded(hook_request(FIBRO), 1_000_000)
    response = client.post(SERVICE, data=at_limit, content_type="application/json")
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 2
    over = _padded(hook_request(FIBRO), 1_000_001)
    assert_problem(client.post(SERVICE, data=over, content_type="application/json"), 413)


def test_body_limit_follows_the_configuration(built_index):
    app = make_app(built_index)
    app.config["MAX_CONTENT_LENGTH"] = 5_000
    try:
        client = app.test_client()
        small = _padded(hook_request(FIBRO), 4_000)
        assert client.post(SERVICE, data=small, content_type="application/json"
                           ).status_code == 200
        big = _padded(hook_request(FIBRO), 6_000)
        assert_problem(client.post(SERVICE, data=big, content_type="application/json"), 413)
    finally:
        app.extensions["snippets_index"].close()


# -- nothing of a hook request is logged -------------------------------------------------------

def _privacy_requests() -> list[tuple[str, object]]:
    """Requests carrying the markers: answered, malformed, missing prefetch, broken Condition."""
    broken = condition("M79.7", display=DISPLAY_MARKER)
    broken["clinicalStatus"] = {"coding": [{"code": [PATIENT_MARKER]}]}
    return [
        ("json", hook_request(FIBRO)),
        ("data", json.dumps(hook_request(FIBRO))[:-3].encode()),  # invalid JSON
        ("json", _without_context_field("userId")),
        ("json", hook_request({"resourceType": "Bundle", "entry": DISPLAY_MARKER})),
        ("json", hook_request(None)),
        ("json", hook_request(bundle(broken))),
    ]


def test_hook_requests_never_reach_the_logs_in_process(built_index, caplog):
    with app_for(built_index) as app:
        app.config["PROPAGATE_EXCEPTIONS"] = False  # errors are handled and logged as in service
        client = app.test_client()
        with every_logger_captured(caplog):
            logging.getLogger("service").debug("capture-probe")
            statuses = []
            for kind, body in _privacy_requests():
                if kind == "json":
                    response = client.post(SERVICE, json=body)
                else:
                    response = client.post(SERVICE, data=body, content_type="application/json")
                statuses.append(response.status_code)
    assert statuses[:5] == [200, 400, 400, 400, 412]
    assert "capture-probe" in caplog.text  # the capture works
    for marker in (PATIENT_MARKER, DISPLAY_MARKER, "Practitioner/123", "ehr.example.org"):
        assert marker not in caplog.text
        for record in caplog.records:
            assert marker not in record.getMessage()
            assert marker not in repr(record.args)
            assert marker not in repr(getattr(record, "fields", None))


class LiveServer(Server):
    """`snippets serve` over an existing index, run from its own empty directory (so a test
    can check nothing is written there), stdout and stderr captured to a file."""

    def __init__(self, tmp: Path, index_dir: Path, env: dict[str, str] | None = None):
        self.cwd = tmp / "cwd"
        self.cwd.mkdir()
        super().__init__(index_dir, tmp / "server.log", env=env, seeds_dir=SEEDS, cwd=self.cwd)


@skip_server
def test_hook_requests_never_reach_the_gunicorn_log_or_disk(built_index, tmp_path):
    server = LiveServer(tmp_path, built_index, env={"SNIPPETS_MAX_BODY_BYTES": "20000"})
    try:
        server.wait_until_up()
        responses = []
        for kind, body in _privacy_requests():
            data = json.dumps(body).encode() if kind == "json" else body
            responses.append(server.http.post(server.base + SERVICE, data=data, timeout=10,
                                              headers={"Content-Type": "application/json"}))
        # SNIPPETS_MAX_BODY_BYTES is honoured by the real server.
        responses.append(server.http.post(
            server.base + SERVICE, data=_padded(hook_request(FIBRO), 30_000), timeout=10,
            headers={"Content-Type": "application/json"}))
    finally:
        returncode = server.stop()
    assert returncode == 0
    assert [r.status_code for r in responses[:5]] == [200, 400, 400, 400, 412]
    assert len(responses[0].json()["cards"]) == 2
    assert responses[-1].status_code == 413
    assert responses[-1].headers["Content-Type"] == "application/problem+json"
    assert not any(DISPLAY_MARKER in r.text for r in responses)
    # The patient id comes back only in the Communication (its subject and recipient), to the
    # EHR that sent it; never in an error.
    for response in responses:
        if response.status_code != 200:
            assert PATIENT_MARKER not in response.text
            continue
        for card in response.json()["cards"]:
            resource = card.pop("suggestions")[0]["actions"][0]["resource"]
            assert resource["subject"] == {"reference": f"Patient/{PATIENT_MARKER}"}
            assert resource.pop("subject") == resource.pop("recipient")[0]
            assert PATIENT_MARKER not in json.dumps(card) + json.dumps(resource)
    log = server.log()
    assert SERVICE in log  # the requests were logged (path only)
    for marker in (PATIENT_MARKER, DISPLAY_MARKER, "Practitioner/123", "ehr.example.org"):
        assert marker not in log
    # Nor written anywhere on disk: not in the server's working directory, not in the index.
    for root in (server.cwd, built_index):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert PATIENT_MARKER.encode() not in data, path
                assert DISPLAY_MARKER.encode() not in data, path
