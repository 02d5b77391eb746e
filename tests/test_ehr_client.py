"""A Python client generated from openapi.yaml (openapi-python-client), used against real gunicorn.

Generation runs offline in a subprocess (about a second); the server takes a second to start.
SNIPPETS_TEST_SKIP_SERVER=1 skips these tests.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from http import HTTPStatus

import feedparser
import pytest
from api_helpers import PROBLEM_JSON, PUBLIC_URL, SLEEP_SOURCE, SPEC_FILE, assert_citation_matches
from server_helpers import skip_server
from test_ehr_cds_hooks import FIBRO, LiveServer, hook_request

pytestmark = skip_server

PACKAGE = "snippets_api_client"
ICD10CM_OID = "2.16.840.1.113883.6.90"
# Every operation in openapi.yaml, as (module under api/, function stem) in the generated client.
# (The function names come from the spec's stable operationIds.)
OPERATIONS = {
    ("snippets", "search_snippets"), ("snippets", "get_snippet"),
    ("sources", "list_sources"), ("sources", "get_source"),
    ("conditions", "list_conditions"), ("caveats", "list_caveats"),
    ("health", "get_health"), ("health", "get_readiness"),
    ("infobutton", "get_infobutton"),
    ("cds_hooks", "get_cds_services"), ("cds_hooks", "post_cds_service"),
    ("feedback", "post_cds_feedback"), ("feedback", "list_feedback"),
    ("handout", "get_handout"),
}
# The generator reads the Atom feed (the 200's first media type) as text: the one setting an
# integrator adds, as the README shows.
GENERATOR_CONFIG = ("post_hooks: []\n"
                    "content_type_overrides:\n  application/atom+xml: text/xml\n")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The generated package, imported; removed from sys.modules afterwards."""
    pytest.importorskip("openapi_python_client",
                        reason="openapi-python-client is not installed (test extra)")
    tmp = tmp_path_factory.mktemp("client")
    config = tmp / "generator.yaml"
    # No post hooks: the generated code is not reformatted (ruff may not be on PATH).
    config.write_text(GENERATOR_CONFIG, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(SPEC_FILE),
         "--output-path", str(tmp / PACKAGE), "--meta", "none", "--config", str(config),
         "--fail-on-warning"],
        cwd=tmp, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(tmp))
        try:
            yield importlib.import_module(PACKAGE)
        finally:
            for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
                del sys.modules[name]


@pytest.fixture(scope="module")
def server(built_index, tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("client-serve"), built_index) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(generated, server):
    """A generated Client for the live server, the generated modules by name, the base URL."""
    client = generated.Client(base_url=server.base, httpx_args={"trust_env": False},
                              raise_on_unexpected_status=True)

    def module(name: str):
        return importlib.import_module(f"{PACKAGE}.{name}")

    with client:
        yield client, module, server.base


def raw(response) -> dict:
    return json.loads(response.content)


def test_every_operation_is_in_the_generated_client(generated):
    for tag, operation in OPERATIONS:
        module = importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")
        for function in ("sync", "sync_detailed", "asyncio", "asyncio_detailed"):
            assert callable(getattr(module, function, None)), f"{tag}.{operation}.{function}"
    models = importlib.import_module(f"{PACKAGE}.models")
    for model in ("SearchResponse", "SnippetDetail", "ConditionList", "Problem", "Feed",
                  "Entry", "Discovery", "HookRequest", "Cards", "Card"):
        assert hasattr(models, model), model


def test_search_returns_parsed_results_with_citations(api):
    client, module, base = api
    search = module("api.snippets.search_snippets")
    response = search.sync_detailed(client=client, q="sleep", condition=["fibromyalgia"])
    assert response.status_code == HTTPStatus.OK
    parsed = response.parsed
    assert isinstance(parsed, module("models").SearchResponse)
    first = parsed.results[0]
    assert first.citation.source_id == SLEEP_SOURCE
    assert first.citation.text_sha256
    assert_citation_matches(first.to_dict())
    assert "investigational-fibromyalgia" in [c.id for c in first.caveats]
    assert "general-disclaimer" in [c.id for c in parsed.caveats]
    # The models keep everything the server sent.
    assert parsed.to_dict() == raw(response)


def test_snippet_by_id(api):
    client, module, base = api
    wanted = "003_c10700c13901ee51-72b1e422383a"
    response = module("api.snippets.get_snippet").sync_detailed(
        wanted, client=client)
    assert response.status_code == HTTPStatus.OK
    snippet = response.parsed
    assert isinstance(snippet, module("models").SnippetDetail)
    assert snippet.id == wanted
    assert "sleep" in snippet.text
    assert_citation_matches(snippet.to_dict())
    assert snippet.to_dict() == raw(response)


def test_conditions_list(api):
    client, module, base = api
    response = module("api.conditions.list_conditions").sync_detailed(client=client)
    assert response.status_code == HTTPStatus.OK
    conditions = {c.slug: c for c in response.parsed.conditions}
    assert "fibromyalgia" in conditions
    assert conditions["fibromyalgia"].label == "Fibromyalgia"
    assert response.parsed.to_dict() == raw(response)


def test_error_response_is_parsed_as_the_problem(api):
    client, module, base = api
    response = module("api.snippets.search_snippets").sync_detailed(
        client=client, q="sleep", limit=0)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.parsed
    assert isinstance(problem, module("models").Problem)
    assert problem.status == 400
    assert [e.parameter for e in problem.errors] == ["limit"]
    assert problem.to_dict() == raw(response)


def test_infobutton_through_the_generated_client(api):
    client, module, base = api
    infobutton = module("api.infobutton.get_infobutton")
    models = module("models")
    # The default answer, Atom, comes back as the document's text.
    response = infobutton.sync_detailed(
        client=client, main_search_criteria_v_c="M79.7",
        main_search_criteria_v_cs=models.GetInfobuttonMainSearchCriteriaVCs.ICD10CM,
        information_recipient=models.GetInfobuttonInformationRecipient.PAT,
        age_v_v=45.0, age_v_u="a")
    assert models.GetInfobuttonMainSearchCriteriaVCs.ICD10CM == ICD10CM_OID  # enums are named
    assert response.status_code == HTTPStatus.OK
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert isinstance(response.parsed, str)
    parsed = feedparser.parse(response.parsed)
    assert not parsed.bozo and parsed.version == "atom10"
    assert parsed.feed.subtitle == "snippets for ICD-10-CM M79.7"
    assert parsed.entries and parsed.entries[0].link.startswith(PUBLIC_URL + "/snippets/")
    ET.fromstring(response.content)

    # JSON on request: the same text, which the generated Feed model reads.
    response = infobutton.sync_detailed(
        client=client, main_search_criteria_v_c="M79.7",
        main_search_criteria_v_cs=models.GetInfobuttonMainSearchCriteriaVCs.ICD10CM,
        knowledge_response_type=models.GetInfobuttonKnowledgeResponseType.APPLICATION_JSON,
        age_v_v=45.0)
    assert response.status_code == HTTPStatus.OK
    feed = models.Feed.from_dict(json.loads(response.parsed)).feed
    assert feed.subtitle.field_value == "snippets for ICD-10-CM M79.7"
    entry = feed.entry[0]
    assert entry.summary.type_ == "html"
    assert entry.link[0].href.startswith(PUBLIC_URL + "/snippets/")
    assert entry.caveats and entry.citation.text_sha256
    assert {"scheme": "age.v.v", "term": "45"} in [c.to_dict() for c in feed.category]
    assert models.Feed.from_dict(json.loads(response.parsed)).to_dict() == raw(response)

    # The typed client cannot even send an unknown OID; over its raw session it is a problem.
    bad = client.get_httpx_client().get("/infobutton", params={
        "mainSearchCriteria.v.c": "M79.7", "mainSearchCriteria.v.cs": "1.2.3"})
    assert bad.status_code == HTTPStatus.BAD_REQUEST
    problem = models.Problem.from_dict(bad.json())
    assert problem.errors[0].parameter == "mainSearchCriteria.v.cs"


def test_feedback_through_the_generated_client(api):
    client, module, base = api
    models = module("models")
    cards = module("api.cds_hooks.post_cds_service").sync_detailed(
        "patient-education", client=client,
        body=models.HookRequest.from_dict(hook_request(FIBRO))).parsed.cards
    body = models.FeedbackRequest.from_dict({"feedback": [{
        "card": cards[0].uuid, "outcome": "accepted",
        "acceptedSuggestions": [{"id": cards[0].suggestions[0].uuid}],
        "outcomeTimestamp": "2026-11-30T10:00:00Z"}]})
    recorded = module("api.feedback.post_cds_feedback").sync_detailed(
        "patient-education", client=client, body=body)
    assert recorded.status_code == HTTPStatus.OK and recorded.parsed.recorded == 1
    counts = module("api.feedback.list_feedback").sync_detailed(client=client).parsed
    assert [(s.accepted, s.given_to_patient) for s in counts.snippets] == [(1, 1)]


def test_cds_hooks_through_the_generated_client(api):
    client, module, base = api
    discovery = module("api.cds_hooks.get_cds_services").sync_detailed(client=client)
    assert discovery.status_code == HTTPStatus.OK
    (service,) = discovery.parsed.services
    assert service.hook == "patient-view"

    post = module("api.cds_hooks.post_cds_service")
    body = module("models").HookRequest.from_dict(hook_request(FIBRO))
    response = post.sync_detailed(service.id, client=client, body=body)
    assert response.status_code == HTTPStatus.OK
    cards = response.parsed.cards
    assert len(cards) == 2
    assert all(len(card.summary) <= 140 and card.indicator in ("info", "warning")
               for card in cards)
    assert all(card.links[0].url.startswith(PUBLIC_URL + "/snippets/") for card in cards)
    assert all(card.suggestions[0].actions[0].resource["resourceType"] == "Communication"
               for card in cards)
    assert response.parsed.to_dict() == raw(response)

    missing = post.sync_detailed("nope", client=client, body=body)
    assert missing.status_code == HTTPStatus.NOT_FOUND
    assert isinstance(missing.parsed, module("models").Problem)
    no_prefetch = module("models").HookRequest.from_dict(
        {**hook_request(FIBRO), "prefetch": {"conditions": None}})
    precondition = post.sync_detailed(service.id, client=client, body=no_prefetch)
    assert precondition.status_code == HTTPStatus.PRECONDITION_FAILED
    assert precondition.parsed.status == 412
