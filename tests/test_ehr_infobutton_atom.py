"""/infobutton as MedlinePlus Connect answers: Atom by default (read by an XML parser and by
feedparser, as a feed reader would), the display name alone, several criteria, the reader's
language, titles a person can tell apart, well-formed XML whatever the parameters carry.

The last test runs against a real gunicorn (SNIPPETS_TEST_SKIP_SERVER=1 skips it).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import feedparser
import pytest
from api_helpers import PUBLIC_URL, SEEDS
from server_helpers import Server, skip_server

ICD10CM_OID = "2.16.840.1.113883.6.90"
SNOMED_OID = "2.16.840.1.113883.6.96"
FIBRO = {"mainSearchCriteria.v.c": "M79.7", "mainSearchCriteria.v.cs": ICD10CM_OID}
ATOM = "{http://www.w3.org/2005/Atom}"
EXT = "{urn:snippets:infobutton:1}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Anything that reads like a file of this repository (or the shared docs beside it).
REPOSITORY_PATH = re.compile(r"\.(?:md|ya?ml|txt|py)\b|\.\./|\bseeds/|\bshared/")


def get(client, params: dict[str, str]):
    return client.get("/infobutton?" + urlencode(params))


def atom_of(client, params: dict[str, str]) -> ET.Element:
    response = get(client, params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/atom+xml"
    return ET.fromstring(response.get_data())


def json_of(client, params: dict[str, str]) -> dict:
    response = get(client, {**params, "knowledgeResponseType": "application/json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["feed"]


def test_without_knowledge_response_type_the_answer_is_atom(client):
    response = get(client, FIBRO)
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert response.get_data().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(response.get_data())
    assert root.tag == f"{ATOM}feed" and root.get(XML_LANG) == "en"
    assert root.findall(f"{ATOM}entry")
    # text/xml, MedlinePlus Connect's name for the same, gives the same entries.
    asked = atom_of(client, {**FIBRO, "knowledgeResponseType": "text/xml"})
    assert [ET.tostring(e) for e in asked.findall(f"{ATOM}entry")] == \
        [ET.tostring(e) for e in root.findall(f"{ATOM}entry")]


def test_feedparser_reads_the_feed_with_links_for_people(client):
    parsed = feedparser.parse(get(client, {**FIBRO, "informationRecipient": "PAT"}).get_data())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Patient-education snippets"
    assert parsed.feed.subtitle == "snippets for ICD-10-CM M79.7"
    assert parsed.feed.language == "en"
    assert parsed.entries
    for entry in parsed.entries:
        assert entry.link.startswith(f"{PUBLIC_URL}/snippets/")  # the HTML page
        page, api = entry.links
        assert (page.rel, page.type, page.hreflang) == ("alternate", "text/html", "en")
        assert (api.rel, api.type) == ("related", "application/json")
        assert page.title == entry.title
        assert entry.id == entry.link
        assert entry.summary_detail.type == "text/html"
        assert entry.summary.startswith("<p>")
        assert entry.updated_parsed is not None


def test_entry_titles_can_be_told_apart(client):
    for params in (FIBRO, {"mainSearchCriteria.v.dn": "vagus nerve stimulation"}):
        titles = [e.findtext(f"{ATOM}title") for e in atom_of(client, params).iter(
            f"{ATOM}entry")]
        assert len(titles) >= 2
        assert len(set(titles)) == len(titles), titles


def test_the_display_name_alone_is_searched(client):
    feed = json_of(client, {"mainSearchCriteria.v.dn": "fibromyalgia"})
    assert feed["subtitle"]["_value"] == "snippets for the display name 'fibromyalgia'"
    assert feed["entry"]
    for entry in feed["entry"]:
        assert "fibromyalgia" in entry["summary"]["_value"].lower()


def test_a_display_name_whose_words_no_snippet_has_together_gets_nothing(client):
    # Right or nothing: partial matches are not offered as answers.
    feed = json_of(client, {"mainSearchCriteria.v.dn": "fibromyalgia xyzzyplugh"})
    assert feed["entry"] == []
    assert feed["subtitle"]["_value"].startswith("no snippets found")


def test_several_search_criteria_in_one_request(client):
    migraine = {"mainSearchCriteria.v.c": "G43.909", "mainSearchCriteria.v.cs": ICD10CM_OID}
    first = [e["id"]["_value"] for e in json_of(client, FIBRO)["entry"]]
    second = [e["id"]["_value"] for e in json_of(client, migraine)["entry"]]
    both = json_of(client, {**FIBRO, "mainSearchCriteria.v.c1": "G43.909",
                            "mainSearchCriteria.v.cs1": ICD10CM_OID,
                            "mainSearchCriteria.v.dn1": "Migraine"})
    ids = [e["id"]["_value"] for e in both["entry"]]
    assert ids == list(dict.fromkeys(first + second))
    assert both["subtitle"]["_value"] == ("snippets for ICD-10-CM M79.7; "
                                          "snippets for ICD-10-CM G43.909")
    schemes = [c["scheme"] for c in both["category"]]
    assert "mainSearchCriteria.v.c1" in schemes and "mainSearchCriteria.v.dn1" in schemes


def test_a_second_criterion_may_be_a_display_name_only(client):
    feed = json_of(client, {**FIBRO, "mainSearchCriteria.v.dn1": "sleep"})
    assert "snippets for the display name 'sleep'" in feed["subtitle"]["_value"]


@pytest.mark.parametrize("language", ["es", "es-MX", "fr"])
def test_another_language_is_answered_in_english_and_says_so(client, language):
    root = atom_of(client, {**FIBRO, "informationRecipient.languageCode.c": language})
    subtitle = root.findtext(f"{ATOM}subtitle")
    assert subtitle.startswith("our content is in English only")
    assert repr(language) in subtitle
    entries = root.findall(f"{ATOM}entry")
    assert entries and all(e.get(XML_LANG) == "en" for e in entries)
    assert all(link.get("hreflang") == "en" for e in entries for link in e.iter(f"{ATOM}link"))


def test_english_is_answered_without_a_note(client):
    feed = json_of(client, {**FIBRO, "informationRecipient.languageCode.c": "en-US"})
    assert feed["subtitle"]["_value"] == "snippets for ICD-10-CM M79.7"
    assert {"scheme": "informationRecipient.languageCode.c", "term": "en-US"} in feed["category"]


@pytest.mark.parametrize("value", ["a\x01", "\x0b", "\ufffe", "y\x00"])
def test_control_characters_in_parameters_still_give_well_formed_xml(client, value):
    response = get(client, {**FIBRO, "age.v.u": value, "mainSearchCriteria.v.dn": f"x{value}"})
    assert response.status_code == 200
    root = ET.fromstring(response.get_data())  # raises on ill-formed XML
    terms = {c.get("scheme"): c.get("term") for c in root.findall(f"{ATOM}category")}
    assert "\ufffd" in terms["age.v.u"]
    assert not feedparser.parse(response.get_data()).bozo


def test_no_repository_path_in_any_feed(client):
    for params in (FIBRO, {**FIBRO, "informationRecipient": "PAT"},
                   {"mainSearchCriteria.v.c": "203082005", "mainSearchCriteria.v.cs": SNOMED_OID},
                   {"mainSearchCriteria.v.dn": "vagus nerve stimulation"}):
        root = atom_of(client, params)
        for caveat in root.iter(f"{EXT}caveat"):
            assert not REPOSITORY_PATH.search(caveat.get("source")), caveat.get("source")
            assert not REPOSITORY_PATH.search(caveat.text or "")


def test_links_come_from_the_configured_public_url_not_the_host_header(make):
    app = make(PUBLIC_URL="https://snippets.example.org/base")
    client = app.test_client()
    response = client.get("/infobutton?" + urlencode({**FIBRO, "knowledgeResponseType":
                                                      "application/json"}),
                          headers={"Host": "evil.example.com"})
    feed = response.get_json()["feed"]
    assert feed["base"] == "https://snippets.example.org/base/"
    for entry in feed["entry"]:
        for link in entry["link"]:
            assert link["href"].startswith("https://snippets.example.org/base/")
    assert "evil.example.com" not in response.get_data(as_text=True)


@pytest.mark.parametrize("bad", ["ftp://x.example", "snippets.example.org", "https://x/?a=1"])
def test_a_public_url_that_cannot_be_a_base_is_refused_at_start(built_index, bad):
    from service import create_app
    with pytest.raises(ValueError, match="SNIPPETS_PUBLIC_URL"):
        create_app({"INDEX_DIR": str(built_index), "PUBLIC_URL": bad})


@skip_server
def test_atom_default_over_real_http(built_index, tmp_path):
    base = "https://ehr-proxy.example.org/snippets"
    with Server(built_index, tmp_path / "server.log", workers=1, seeds_dir=SEEDS,
                env={"SNIPPETS_PUBLIC_URL": base}) as server:
        response = server.get("/infobutton?" + urlencode({**FIBRO, "informationRecipient": "PAT"}))
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
        root = ET.fromstring(response.content)
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo
        assert len(parsed.entries) == len(root.findall(f"{ATOM}entry")) >= 1
        for entry in parsed.entries:
            assert entry.link.startswith(base + "/snippets/")
            # The page link opens HTML on this server (the base is the proxy's).
            page = server.get(entry.link.removeprefix(base))
            assert page.status_code == 200
            assert page.headers["Content-Type"].startswith("text/html")
