"""GET /infobutton: HL7 Infobutton URL-based requests answered in the MedlinePlus Connect shape
(Atom by default, JSON with knowledgeResponseType=application/json)."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from api_helpers import (
    PROBLEM_JSON,
    PUBLIC_URL,
    assert_bad_parameter,
    assert_citation_matches,
    follow,
)

ICD10CM_OID = "2.16.840.1.113883.6.90"
SNOMED_OID = "2.16.840.1.113883.6.96"
FIBRO_ICD = {"mainSearchCriteria.v.c": "M79.7", "mainSearchCriteria.v.cs": ICD10CM_OID}
FIBRO_SNOMED = {"mainSearchCriteria.v.c": "203082005", "mainSearchCriteria.v.cs": SNOMED_OID}
ATOM = "{http://www.w3.org/2005/Atom}"
EXT = "{urn:snippets:infobutton:1}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


JSON = {"knowledgeResponseType": "application/json"}


def infobutton(client, params: dict[str, str]):
    return client.get("/infobutton?" + urlencode(params))


def feed_of(client, params: dict[str, str]) -> dict:
    response = infobutton(client, {**JSON, **params})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()["feed"]


def entry_ids(feed: dict) -> list[str]:
    return [entry["id"]["_value"].rsplit("/", 1)[1] for entry in feed["entry"]]


def atom_of(client, params: dict[str, str]) -> ET.Element:
    response = infobutton(client, params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/atom+xml"
    return ET.fromstring(response.get_data())


@pytest.fixture(scope="module")
def catalogue(client) -> dict[str, dict]:
    return {c["id"]: c for c in client.get("/v1/caveats").get_json()["caveats"]}


# -- the feed for a code -----------------------------------------------------------------------

def test_icd10cm_code_gets_a_medlineplus_connect_feed_with_citations_and_caveats(client):
    response = infobutton(client, {**FIBRO_ICD, **JSON, "informationRecipient": "PROV"})
    assert response.status_code == 200
    assert response.content_type == "application/json"
    feed = response.get_json()["feed"]
    ready = client.get("/readyz").get_json()

    assert feed["title"]["_value"]
    assert feed["subtitle"]["_value"] == "snippets for ICD-10-CM M79.7"
    assert feed["author"]["name"]["_value"]
    assert feed["author"]["uri"]["_value"] == PUBLIC_URL + "/"
    assert feed["updated"]["_value"] == ready["built_at"]
    assert ready["version"] in feed["id"]["_value"]
    assert "general-disclaimer" in [c["id"] for c in feed["caveats"]]

    assert 1 <= len(feed["entry"]) <= 5
    for entry in feed["entry"]:
        page, api = entry["link"]
        # For people: the snippet's HTML page; for programs: the snippet in the JSON API.
        assert page["rel"] == "alternate" and page["type"] == "text/html"
        assert api["rel"] == "related" and api["type"] == "application/json"
        assert page["hreflang"] == api["hreflang"] == "en"
        assert page["title"] == entry["title"]["_value"]
        assert entry["id"]["_value"] == page["href"]
        assert entry["updated"]["_value"] == ready["built_at"]
        opened = follow(client, page["href"])
        assert opened.status_code == 200 and opened.mimetype == "text/html"
        # Everything in the entry agrees with the snippet in the API.
        snippet = follow(client, api["href"])
        assert snippet.status_code == 200
        snippet = snippet.get_json()
        assert page["href"] == f"{PUBLIC_URL}/snippets/{snippet['id']}"
        assert api["href"] == f"{PUBLIC_URL}/v1/snippets/{snippet['id']}"
        assert snippet["text"] in html.unescape(opened.get_data(as_text=True))
        assert "fibromyalgia" in snippet["conditions"]
        assert entry["summary"] == {"_value": f"<p>{html.escape(snippet['text'])}</p>",
                                    "type": "html"}
        assert entry["citation"] == snippet["citation"]
        assert_citation_matches(snippet)
        where = snippet["citation"]["section"] or snippet["citation"]["title"]
        assert entry["title"]["_value"].startswith(f"{where}: ")
        opening = " ".join(snippet["text"].split()[:4])
        assert opening in entry["title"]["_value"]
        assert [c["id"] for c in entry["caveats"]] == [c["id"] for c in snippet["caveats"]]
        # PROV: the clinical caveat texts.
        assert [c["text"] for c in entry["caveats"]] == [c["text"] for c in snippet["caveats"]]


def test_feed_lists_the_same_snippets_as_the_search_api_for_that_code(client):
    feed = feed_of(client, FIBRO_ICD)
    search = client.get("/v1/snippets?code=icd10cm%7CM79.7&limit=5").get_json()
    assert entry_ids(feed) == [r["id"] for r in search["results"]]


def test_snomed_code_finds_the_same_snippets_as_the_icd10cm_code(client):
    icd = feed_of(client, FIBRO_ICD)
    snomed = feed_of(client, FIBRO_SNOMED)
    assert entry_ids(snomed) == entry_ids(icd)
    assert snomed["subtitle"]["_value"] == "snippets for SNOMED CT 203082005"


def test_icd10cm_code_is_matched_whatever_its_case_or_dot(client):
    expected = entry_ids(feed_of(client, FIBRO_ICD))
    for code in ("m79.7", "M797"):
        assert entry_ids(feed_of(client, {**FIBRO_ICD, "mainSearchCriteria.v.c": code})) == \
            expected, code


# -- recipients --------------------------------------------------------------------------------

def test_patient_recipient_gets_the_plain_language_caveats(client, catalogue):
    feed = feed_of(client, {**FIBRO_ICD, "informationRecipient": "PAT"})
    shown = feed["caveats"] + [c for entry in feed["entry"] for c in entry["caveats"]]
    for caveat in shown:
        expected = catalogue[caveat["id"]]["plain_text"] or catalogue[caveat["id"]]["text"]
        assert caveat["text"] == expected, caveat["id"]
    # The check means something: the patient texts differ from the clinical ones here.
    assert any(catalogue[c["id"]]["plain_text"] not in (None, catalogue[c["id"]]["text"])
               for c in shown)
    assert "not medical advice" in feed["caveats"][0]["text"]


@pytest.mark.parametrize("recipient", [None, "PROV"], ids=["default", "PROV"])
def test_provider_and_default_recipient_get_the_clinical_caveats(client, catalogue, recipient):
    params = dict(FIBRO_ICD, **({"informationRecipient": recipient} if recipient else {}))
    feed = feed_of(client, params)
    shown = feed["caveats"] + [c for entry in feed["entry"] for c in entry["caveats"]]
    assert shown
    assert all(c["text"] == catalogue[c["id"]]["text"] for c in shown)


# -- display name, unmapped codes --------------------------------------------------------------

def test_unmapped_code_falls_back_to_the_display_name(client):
    feed = feed_of(client, {"mainSearchCriteria.v.c": "Z00.00",
                            "mainSearchCriteria.v.cs": ICD10CM_OID,
                            "mainSearchCriteria.v.dn": "Fibromyalgia"})
    subtitle = feed["subtitle"]["_value"]
    assert "Z00.00" in subtitle and "not in our vocabulary" in subtitle
    assert "Fibromyalgia" in subtitle
    assert feed["entry"]
    for entry in feed["entry"]:
        assert "fibromyalgia" in html.unescape(entry["summary"]["_value"]).lower()


def test_display_name_is_searched_as_free_text_when_the_code_is_not_covered(client):
    feed = feed_of(client, {"mainSearchCriteria.v.c": "E11.9",
                            "mainSearchCriteria.v.cs": ICD10CM_OID,
                            "mainSearchCriteria.v.dn": "sleep"})
    search = client.get("/v1/snippets?q=sleep&limit=5").get_json()
    assert entry_ids(feed) == [r["id"] for r in search["results"]]
    assert entry_ids(feed)
    assert "sleep" in feed["subtitle"]["_value"]


@pytest.mark.parametrize(("code", "system", "says"), [
    ("NOTACODE", ICD10CM_OID, "not a valid ICD-10-CM code"),
    ("M79.7", SNOMED_OID, "not a valid SNOMED CT code"),
])
def test_code_that_does_not_fit_its_system_gets_an_empty_feed_that_says_why(client, code,
                                                                             system, says):
    feed = feed_of(client, {"mainSearchCriteria.v.c": code, "mainSearchCriteria.v.cs": system})
    assert feed["entry"] == []
    assert code in feed["subtitle"]["_value"] and says in feed["subtitle"]["_value"]


def test_unmapped_code_without_display_name_gets_an_empty_feed_that_says_why(client):
    feed = feed_of(client, {"mainSearchCriteria.v.c": "Z00.00",
                            "mainSearchCriteria.v.cs": ICD10CM_OID})
    assert feed["entry"] == []
    subtitle = feed["subtitle"]["_value"]
    assert "ICD-10-CM Z00.00" in subtitle and "not in our vocabulary" in subtitle
    # The disclaimer is still there.
    assert [c["id"] for c in feed["caveats"]] == ["general-disclaimer"]


def test_display_name_that_matches_nothing_gets_an_empty_feed_that_says_so(client):
    feed = feed_of(client, {"mainSearchCriteria.v.c": "Z00.00",
                            "mainSearchCriteria.v.cs": ICD10CM_OID,
                            "mainSearchCriteria.v.dn": "xyzzyplugh"})
    assert feed["entry"] == []
    assert feed["subtitle"]["_value"].startswith("no snippets found")
    assert "xyzzyplugh" in feed["subtitle"]["_value"]


# -- patient context and other parameters ------------------------------------------------------

def test_patient_context_is_accepted_and_echoed_as_categories(client):
    feed = feed_of(client, {**FIBRO_ICD, "informationRecipient": "PAT",
                            "patientPerson.administrativeGenderCode.c": "F",
                            "age.v.v": "45", "age.v.u": "a"})
    categories = {c["scheme"]: c["term"] for c in feed["category"]}
    assert categories == {"mainSearchCriteria.v.c": "M79.7", **JSON,
                          "mainSearchCriteria.v.cs": ICD10CM_OID,
                          "informationRecipient": "PAT",
                          "patientPerson.administrativeGenderCode.c": "F",
                          "age.v.v": "45", "age.v.u": "a"}
    assert all(set(c) == {"scheme", "term"} for c in feed["category"])


def test_unknown_infobutton_parameters_are_accepted_and_ignored(client):
    plain = feed_of(client, FIBRO_ICD)
    extra = feed_of(client, {**FIBRO_ICD, "taskContext.c.c": "PROBLISTREV",
                             "performer": "PROV", "encounter.c.c": "AMB"})
    assert entry_ids(extra) == entry_ids(plain)
    assert extra["subtitle"] == plain["subtitle"]


# -- Atom --------------------------------------------------------------------------------------

def test_text_xml_returns_the_same_feed_as_atom(client, catalogue):
    params = {**FIBRO_ICD, "informationRecipient": "PAT"}
    as_json = feed_of(client, params)
    root = atom_of(client, {**params, "knowledgeResponseType": "text/xml"})
    assert root.tag == f"{ATOM}feed"
    assert root.get(XML_BASE) == PUBLIC_URL + "/"
    assert root.get(XML_LANG) == "en"
    assert root.findtext(f"{ATOM}title") == as_json["title"]["_value"]
    assert root.findtext(f"{ATOM}subtitle") == as_json["subtitle"]["_value"]
    assert root.findtext(f"{ATOM}author/{ATOM}name") == as_json["author"]["name"]["_value"]
    assert root.findtext(f"{ATOM}updated") == as_json["updated"]["_value"]
    categories = {c.get("scheme"): c.get("term") for c in root.findall(f"{ATOM}category")}
    assert categories["knowledgeResponseType"] == "text/xml"
    assert categories["informationRecipient"] == "PAT"
    disclaimer = root.find(f"{EXT}caveat")
    assert disclaimer.get("id") == "general-disclaimer"
    assert disclaimer.text == catalogue["general-disclaimer"]["plain_text"]

    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == len(as_json["entry"]) >= 1
    for element, entry in zip(entries, as_json["entry"], strict=True):
        assert element.findtext(f"{ATOM}id") == entry["id"]["_value"]
        assert element.findtext(f"{ATOM}title") == entry["title"]["_value"]
        assert element.get(XML_LANG) == "en"
        links = [dict(link.attrib) for link in element.findall(f"{ATOM}link")]
        assert links == entry["link"]
        summary = element.find(f"{ATOM}summary")
        assert summary.get("type") == "html" and summary.text == entry["summary"]["_value"]
        citation = element.find(f"{EXT}citation").attrib
        assert citation == {k: str(v) for k, v in entry["citation"].items() if v is not None}
        caveats = element.findall(f"{EXT}caveat")
        assert [(c.get("id"), c.get("severity"), c.text) for c in caveats] == \
            [(c["id"], c["severity"], c["text"]) for c in entry["caveats"]]


def test_empty_atom_feed_still_says_why(client):
    root = atom_of(client, {"mainSearchCriteria.v.c": "Z00.00",
                            "mainSearchCriteria.v.cs": ICD10CM_OID})
    assert root.findall(f"{ATOM}entry") == []
    assert "not in our vocabulary" in root.findtext(f"{ATOM}subtitle")


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "parameter", "says"), [
    ({"mainSearchCriteria.v.c": "M79.7", "mainSearchCriteria.v.cs": "1.2.3"},
     "mainSearchCriteria.v.cs", ICD10CM_OID),
    ({"mainSearchCriteria.v.c": "M79.7", "mainSearchCriteria.v.cs": "1.2.3",
      "knowledgeResponseType": "text/xml"}, "mainSearchCriteria.v.cs", "unknown code system"),
    ({"mainSearchCriteria.v.c": "M79.7"}, "mainSearchCriteria.v.cs", "Missing data"),
    ({"mainSearchCriteria.v.cs": ICD10CM_OID}, "mainSearchCriteria.v.c", "Missing data"),
    ({}, "mainSearchCriteria.v.c", "Missing data"),
    ({**FIBRO_ICD, "mainSearchCriteria.v.c1": "M79.7"}, "mainSearchCriteria.v.cs1",
     "Missing data"),
    ({**FIBRO_ICD, "mainSearchCriteria.v.cs1": "1.2.3"}, "mainSearchCriteria.v.cs1",
     "unknown code system"),
    ({**FIBRO_ICD, "mainSearchCriteria.v.cs1": ICD10CM_OID}, "mainSearchCriteria.v.c1",
     "Missing data"),
    ({**FIBRO_ICD, **{f"mainSearchCriteria.v.dn{i}": "sleep" for i in range(1, 6)}},
     "mainSearchCriteria.v.c", "at most 5"),
    ({**FIBRO_ICD, "informationRecipient.languageCode.c": "e<n"},
     "informationRecipient.languageCode.c", "not a language code"),
    ({"mainSearchCriteria.v.c": "M79.7;DROP", "mainSearchCriteria.v.cs": ICD10CM_OID},
     "mainSearchCriteria.v.c", "M79.7;DROP"),
    ({"mainSearchCriteria.v.c": "x" * 21, "mainSearchCriteria.v.cs": SNOMED_OID},
     "mainSearchCriteria.v.c", "at most 20"),
    ({**FIBRO_ICD, "informationRecipient": "PAYOR"}, "informationRecipient", "PAYOR"),
    ({**FIBRO_ICD, "knowledgeResponseType": "text/html"}, "knowledgeResponseType", "text/html"),
    ({**FIBRO_ICD, "knowledgeResponseType": "application/javascript"}, "knowledgeResponseType",
     "application/javascript"),
    ({**FIBRO_ICD, "age.v.v": "forty"}, "age.v.v", "number"),
    ({**FIBRO_ICD, "age.v.v": "-1"}, "age.v.v", "greater than or equal to 0"),
    ({**FIBRO_ICD, "age.v.v": "nan"}, "age.v.v", "nan"),
    ({**FIBRO_ICD, "mainSearchCriteria.v.dn": "a" * 201}, "mainSearchCriteria.v.dn", "200"),
], ids=["unknown-oid", "unknown-oid-xml", "code-without-system", "system-without-code",
        "nothing", "second-code-without-system", "second-unknown-oid", "second-system-alone",
        "too-many-criteria", "bad-language", "code-with-bad-characters", "code-too-long",
        "bad-recipient", "bad-response-type", "jsonp", "age-not-a-number", "negative-age",
        "nan-age",
        "display-name-too-long"])
def test_bad_parameters_get_a_problem_naming_the_parameter(client, params, parameter, says):
    response = infobutton(client, params)
    assert response.mimetype == PROBLEM_JSON  # also when text/xml was asked for
    body = assert_bad_parameter(response, parameter)
    assert body["detail"].startswith(f"{parameter}:")
    assert says in body["detail"]
