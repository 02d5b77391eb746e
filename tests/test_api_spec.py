"""openapi.yaml: committed = generated, a valid OpenAPI 3.1 document, and true to real responses."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
import yaml
from api_helpers import SPEC_FILE, app_for
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from service.cli import cli
from service.docs import spec_yaml

SPEC = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
SPEC_URI = "urn:snippets:openapi"
REGISTRY = Registry().with_resource(
    SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
FIBRO_SNIPPET = "003_c10700c13901ee51-72b1e422383a"
FIBRO_ICD_INFOBUTTON = ("/infobutton?mainSearchCriteria.v.c=M79.7"
                        "&mainSearchCriteria.v.cs=2.16.840.1.113883.6.90")
HOOK = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "1288992"},
        "prefetch": {"conditions": {"resourceType": "Bundle", "entry": [{"resource": {
            "resourceType": "Condition",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                 "code": "M79.7"}]}}}]}}}

FEEDBACK = {"feedback": [{"card": "1b7a1a8e-3c1f-4c55-9e4e-2b0b8f2d9a11", "outcome": "overridden",
                          "overrideReason": {"reason": {"code": "not-relevant"}},
                          "outcomeTimestamp": "2026-11-30T10:00:00Z"}]}

# For each operation: real requests, against the built index ("ready") or an empty index
# directory ("empty"), covering its success and at least one error where one can happen.
# A third item is a JSON request body.
REQUESTS = {
    ("get", "/v1/snippets"): [
        ("ready", "/v1/snippets?q=sleep&condition=fibromyalgia"),
        ("ready", "/v1/snippets?q=vagus&limit=50"),
        ("ready", "/v1/snippets?condition=chronic-pain&max_grade=14"),
        ("ready", "/v1/snippets?code=icd10cm%7CE11.9"),
        ("ready", "/v1/snippets?q=fibromyalga"),
        ("ready", "/v1/snippets?q=sleep%20banana"),
        ("ready", "/v1/snippets?q=sleep&limit=0"),
        ("ready", "/v1/snippets?code=loinc%7C1234-5"),
        ("ready", "/v1/snippets?q=sleep&foo=1"),
        ("empty", "/v1/snippets?q=sleep"),
    ],
    ("get", "/v1/snippets/{snippet_id}"): [
        ("ready", f"/v1/snippets/{FIBRO_SNIPPET}"),
        ("ready", "/v1/snippets/nope"),
        ("empty", f"/v1/snippets/{FIBRO_SNIPPET}"),
    ],
    ("get", "/v1/sources"): [("ready", "/v1/sources"), ("empty", "/v1/sources")],
    ("get", "/v1/sources/{source_id}"): [
        ("ready", "/v1/sources/003_c10700c13901ee51"),
        ("ready", "/v1/sources/nope"),
    ],
    ("get", "/v1/conditions"): [("ready", "/v1/conditions"), ("empty", "/v1/conditions")],
    ("get", "/v1/caveats"): [("ready", "/v1/caveats"), ("empty", "/v1/caveats")],
    ("get", "/healthz"): [("ready", "/healthz"), ("empty", "/healthz")],
    ("get", "/readyz"): [("ready", "/readyz"), ("empty", "/readyz")],
    ("get", "/infobutton"): [
        ("ready", FIBRO_ICD_INFOBUTTON + "&informationRecipient=PAT"),
        ("ready", FIBRO_ICD_INFOBUTTON + "&knowledgeResponseType=application%2Fjson"),
        ("ready", "/infobutton?mainSearchCriteria.v.dn=sleep"
                  "&knowledgeResponseType=application%2Fjson"),
        ("ready", FIBRO_ICD_INFOBUTTON + "&knowledgeResponseType=text%2Fxml"),
        ("ready", "/infobutton?mainSearchCriteria.v.c=Z00.00"
                  "&mainSearchCriteria.v.cs=2.16.840.1.113883.6.90"),
        ("ready", "/infobutton?mainSearchCriteria.v.c=M79.7&mainSearchCriteria.v.cs=1.2.3"),
        ("empty", FIBRO_ICD_INFOBUTTON),
    ],
    ("get", "/cds-services"): [("ready", "/cds-services"), ("empty", "/cds-services")],
    ("get", "/v1/handout"): [
        ("ready", f"/v1/handout?snippet={FIBRO_SNIPPET}"),
        ("ready", f"/v1/handout?snippet={FIBRO_SNIPPET}&snippet=nope"),
        ("ready", "/v1/handout"),
        ("empty", f"/v1/handout?snippet={FIBRO_SNIPPET}"),
    ],
    ("get", "/v1/feedback"): [("ready", "/v1/feedback")],
    ("post", "/cds-services/{service_id}/feedback"): [
        ("ready", "/cds-services/patient-education/feedback", FEEDBACK),
        ("ready", "/cds-services/patient-education/feedback", {"feedback": []}),
        ("ready", "/cds-services/nope/feedback", FEEDBACK),
    ],
    ("post", "/cds-services/{service_id}"): [
        ("ready", "/cds-services/patient-education", HOOK),
        ("ready", "/cds-services/patient-education", {**HOOK, "hook": "order-select"}),
        ("ready", "/cds-services/patient-education", {**HOOK, "prefetch": {}}),
        ("ready", "/cds-services/nope", HOOK),
        ("empty", "/cds-services/patient-education", HOOK),
    ],
}
OPERATIONS = sorted((method, path) for path, item in SPEC["paths"].items()
                    for method in item if method in METHODS)


@pytest.fixture(scope="module")
def clients(built_index, tmp_path_factory):
    with app_for(built_index) as ready, app_for(tmp_path_factory.mktemp("empty")) as empty:
        yield {"ready": ready.test_client(), "empty": empty.test_client()}


def _pointer(*segments: str) -> str:
    return "".join("/" + quote(s.replace("~", "~0").replace("/", "~1"), safe="~")
                   for s in segments)


def _resolve_response(response: dict, where: tuple[str, ...]) -> tuple[dict, tuple[str, ...]]:
    """Follow a response $ref (to components/responses); returns it and its location."""
    while "$ref" in response:
        ref = response["$ref"]
        assert ref.startswith("#/"), ref
        where = tuple(ref[2:].split("/"))
        response = SPEC
        for segment in where:
            response = response[segment.replace("~1", "/").replace("~0", "~")]
    return response, where


# -- the spec itself -------------------------------------------------------------------------

def test_committed_spec_is_up_to_date_with_the_code():
    result = CliRunner().invoke(cli, ["openapi", "--check", "--output", str(SPEC_FILE)])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_generated_spec_equals_the_committed_file(built_index):
    with app_for(built_index) as app, app.app_context():
        generated = spec_yaml(app.extensions["snippets_api"].spec.to_dict())
    assert generated == SPEC_FILE.read_text(encoding="utf-8")


def test_check_fails_on_a_stale_spec(tmp_path):
    stale = tmp_path / "openapi.yaml"
    stale.write_text(SPEC_FILE.read_text(encoding="utf-8").replace("1.0.0", "0.9.0", 1),
                     encoding="utf-8")
    result = CliRunner().invoke(cli, ["openapi", "--check", "--output", str(stale)])
    assert result.exit_code == 1
    assert "out of date" in result.output


def test_spec_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1")
    validate(SPEC)


def test_every_operation_documents_its_errors_as_problem_json():
    for method, path in OPERATIONS:
        responses = SPEC["paths"][path][method]["responses"]
        assert "200" in responses
        assert "application/json" in responses["200"]["content"]
        assert "default" in responses, (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")) or status == "default":
                resolved, _ = _resolve_response(response, ("paths", path, method, status))
                assert list(resolved["content"]) == ["application/problem+json"], status


def test_search_parameters_are_documented_with_their_limits():
    params = {p["name"]: p for p in SPEC["paths"]["/v1/snippets"]["get"]["parameters"]}
    assert set(params) == {"q", "condition", "code", "source", "max_grade", "limit", "offset"}
    assert params["q"]["schema"]["maxLength"] == 500
    assert params["limit"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"]["maximum"] == 50
    assert params["offset"]["schema"]["minimum"] == 0
    for name in ("condition", "code", "source"):
        assert params[name]["schema"]["type"] == "array"
        assert params[name]["schema"]["maxItems"] == 20
        assert params[name]["explode"] is True


# -- real responses against the spec ---------------------------------------------------------

def test_every_operation_has_example_requests():
    assert set(OPERATIONS) <= set(REQUESTS), "add example requests for new operations"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_real_responses_match_the_spec(clients, method, path):
    assert (method, path) in REQUESTS, f"no example requests for {method.upper()} {path}"
    operation = SPEC["paths"][path][method]
    statuses = set()
    for kind, url, *body in REQUESTS[(method, path)]:
        response = getattr(clients[kind], method)(url, **({"json": body[0]} if body else {}))
        status = str(response.status_code)
        statuses.add(status[0])
        key = status if status in operation["responses"] else "default"
        assert key in operation["responses"], f"{url}: {status} is not documented"
        documented, where = _resolve_response(operation["responses"][key],
                                              ("paths", path, method, "responses", key))
        assert response.mimetype in documented["content"], (url, response.content_type)
        if response.mimetype == "application/atom+xml":
            # The Atom feed is documented as a string: check it is an Atom feed.
            assert documented["content"][response.mimetype]["schema"]["type"] == "string"
            root = ET.fromstring(response.get_data())
            assert root.tag == "{http://www.w3.org/2005/Atom}feed", url
            continue
        assert response.content_type == response.mimetype, "no parameters on JSON media types"
        schema_ref = SPEC_URI + "#" + _pointer(*where, "content", response.mimetype, "schema")
        validator = Draft202012Validator({"$ref": schema_ref}, registry=REGISTRY)
        body = json.loads(response.get_data(as_text=True))
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{url} ({status}): " + "; ".join(
            f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    assert "2" in statuses, "at least one success per operation"
    if path not in ("/healthz", "/cds-services", "/v1/feedback"):  # these never fail
        assert statuses - {"2"}, "at least one error response per operation"


def test_validation_catches_a_wrong_body():
    # The check above can fail: a body missing a required field does not validate.
    ref = SPEC_URI + "#" + _pointer("components", "schemas", "SearchResponse")
    validator = Draft202012Validator({"$ref": ref}, registry=REGISTRY)
    assert list(validator.iter_errors({"total": 0}))
    ref = SPEC_URI + "#" + _pointer("components", "schemas", "Problem")
    validator = Draft202012Validator({"$ref": ref}, registry=REGISTRY)
    assert list(validator.iter_errors({"type": "about:blank", "title": "x", "status": "400",
                                       "detail": "x"}))
