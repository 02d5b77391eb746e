"""The pages for people, in process: what each page shows, its errors, its CSP, and the
handout as a FHIR DocumentReference (validated with fhir.resources' R4B models).
The same pages in a real browser: tests/test_pages_browser.py."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from api_helpers import assert_bad_parameter, assert_problem

FIBRO_SLEEP = "003_c10700c13901ee51-72b1e422383a"
FIBRO_SOURCE = "003_c10700c13901ee51"
PAGE_PATHS = ["/", "/?q=sleep&condition=fibromyalgia", f"/snippets/{FIBRO_SLEEP}",
              f"/sources/{FIBRO_SOURCE}", f"/handout?snippet={FIBRO_SLEEP}", "/docs",
              "/snippets/nope", "/handout"]


class Page(HTMLParser):
    """Tags with attributes, and the text, of one HTML page."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def page(client, path: str, status: int = 200) -> Page:
    response = client.get(path)
    assert response.status_code == status, (path, response.get_data(as_text=True)[:500])
    assert response.mimetype == "text/html", path
    return Page(response.get_data(as_text=True))


def csp(response) -> dict[str, list[str]]:
    parts = [d.split() for d in response.headers["Content-Security-Policy"].split(";")]
    return {p[0]: p[1:] for p in parts if p}


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_every_page_is_english_with_a_skip_link_and_only_our_own_assets(client, path):
    response = client.get(path)
    parsed = Page(response.get_data(as_text=True))
    assert parsed.all("html")[0]["lang"] == "en"
    assert len(parsed.all("h1")) == 1
    skip = [a for a in parsed.all("a") if "skip-link" in (a.get("class") or "")]
    assert skip and skip[0]["href"] == "#main"
    assert [m for m in parsed.all("main") if m.get("id") == "main"]
    for tag, attrs in parsed.tags:
        assert tag not in ("style", "iframe"), (path, tag)
        assert "style" not in attrs and not [a for a in attrs if a.startswith("on")], (path, tag)
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/"), (path, attrs)
        if tag in ("link", "img", "script"):
            url = attrs.get("href") or attrs.get("src") or ""
            assert url.startswith("/") and not url.startswith("//"), (path, tag, url)
            with client.get(url) as asset:
                assert asset.status_code == 200, url
    policy = csp(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in s or s == "*" or s.startswith("http")
                   for sources in policy.values() for s in sources)


def test_every_form_control_has_a_label(client):
    parsed = page(client, "/?q=sleep&condition=fibromyalgia")
    labelled = {attrs.get("for") for attrs in parsed.all("label")}
    controls = parsed.all("input") + parsed.all("select")
    assert controls
    for attrs in controls:
        assert attrs.get("id") in labelled, attrs


def test_search_page_shows_the_paragraph_its_caveats_grade_and_citation(client):
    parsed = page(client, "/?q=sleep&condition=fibromyalgia")
    text = parsed.plain
    assert "1 paragraph found" in text
    assert "improve sleep quality" in text
    assert "Warning" in text and "not an approved treatment for fibromyalgia" in text
    assert "Caveat source:" in text
    assert "College reading level (US school grade" in text
    assert "Source URL: unknown" in text
    links = [a["href"] for a in parsed.all("a")]
    assert f"/sources/{FIBRO_SOURCE}#{FIBRO_SLEEP}" in links
    assert f"/snippets/{FIBRO_SLEEP}" in links
    boxes = [i for i in parsed.all("input") if i.get("type") == "checkbox"]
    assert [b["value"] for b in boxes] == [FIBRO_SLEEP] and boxes[0]["name"] == "snippet"
    (form,) = [f for f in parsed.all("form") if f.get("action") == "/handout"]
    assert form["method"] == "get"


def test_search_page_marks_matches_and_keeps_the_form_values(client):
    response = client.get("/?q=sleep&condition=fibromyalgia&max_grade=30")
    html = response.get_data(as_text=True)
    assert "<mark>sleep</mark>" in html
    parsed = Page(html)
    assert parsed.all("input")[0]["value"] == "sleep"
    selected = [o["value"] for o in parsed.all("option") if "selected" in o]
    assert selected == ["fibromyalgia"]


def test_search_page_says_which_words_nothing_is_about_and_what_each_result_matched(client):
    uncovered = page(client, "/?q=knee+pain").plain
    assert "Nothing found" in uncovered and "No paragraph here is about “knee”" in uncovered
    answered = page(client, "/?q=vns+sleep").plain
    assert "Matches: vns, sleep" in answered


def test_search_page_without_a_question_shows_only_the_form(client):
    parsed = page(client, "/")
    assert "found" not in parsed.plain
    assert parsed.all("input")[0]["name"] == "q"


def test_search_page_offers_a_spelling_and_pages_through_results(client):
    assert "Did you mean" in page(client, "/?q=fibromyalga").plain
    first = page(client, "/?q=vagus")
    nexts = [a["href"] for a in first.all("a") if a.get("rel") == "next"]
    assert nexts and "offset=10" in nexts[0]
    second = page(client, nexts[0])
    assert [o["start"] for o in second.all("ol") if o.get("start")] == ["11"]


@pytest.mark.parametrize(("query", "says"), [
    ("max_grade=abc", "reading grade must be a number"),
    ("max_grade=99", "reading grade must be a number"),
    ("condition=nope", "no condition 'nope'"),
    ("offset=-1", "page offset"),
    ("q=" + "a" * 501, "under 500 characters"),
])
def test_search_page_says_what_is_wrong_with_a_bad_search(client, query, says):
    parsed = page(client, f"/?{query}", 400)
    assert says in parsed.plain
    assert [a for a in parsed.tags if a[1].get("role") == "alert"]


def test_snippet_page_shows_text_section_caveats_citation_and_neighbours(client):
    parsed = page(client, f"/snippets/{FIBRO_SLEEP}")
    text = parsed.plain
    assert "improve sleep quality" in text
    assert "Caveats for clinicians (3)" in text
    assert "Caveat source:" in text and "mayoclinic.org" in text
    assert "clinical-facts.md" not in text
    assert "Paragraph 4" in text
    assert "Publisher unknown" in text and "Licence unknown" in text
    assert "Previous paragraph" in text and "Next paragraph" in text
    links = [a["href"] for a in parsed.all("a")]
    assert f"/handout?snippet={FIBRO_SLEEP}" in links
    assert f"/v1/snippets/{FIBRO_SLEEP}" in links
    assert f"/sources/{FIBRO_SOURCE}#{FIBRO_SLEEP}" in links
    neighbours = client.get(f"/v1/snippets/{FIBRO_SLEEP}").get_json()
    for other in (neighbours["previous_id"], neighbours["next_id"]):
        assert f"/snippets/{other}" in links


def test_first_paragraph_says_it_has_no_previous_one(client):
    first = client.get(f"/v1/sources/{FIBRO_SOURCE}").get_json()["snippet_ids"][0]
    assert "None: this is the first paragraph" in page(client, f"/snippets/{first}").plain


def test_unknown_snippet_and_source_are_404_pages_naming_them(client):
    assert "'nope'" in page(client, "/snippets/nope", 404).plain
    assert "'nope'" in page(client, "/sources/nope", 404).plain


def test_source_page_anchors_every_paragraph_with_its_caveats(client):
    parsed = page(client, f"/sources/{FIBRO_SOURCE}")
    ids = client.get(f"/v1/sources/{FIBRO_SOURCE}").get_json()["snippet_ids"]
    anchored = [d["id"] for d in parsed.all("div") if d.get("class") == "source-paragraph"]
    assert anchored == ids
    assert len(parsed.all("aside")) == len(ids)
    text = parsed.plain
    assert "Can Vagus Nerve Stimulation Be Used to Treat Fibromyalgia?" in text
    assert "URL unknown" in text and "Retrieved unknown" in text


# -- the handout --------------------------------------------------------------------------

def _two_ids(client) -> list[str]:
    results = client.get("/v1/snippets?q=vagus&limit=5").get_json()["results"]
    return [results[1]["id"], results[0]["id"]]


def test_handout_keeps_the_order_given_with_plain_caveats_citations_and_disclaimer(client):
    ids = _two_ids(client)
    snippets = [client.get(f"/v1/snippets/{i}").get_json() for i in ids]
    html = client.get("/handout?" + "&".join(f"snippet={i}" for i in ids)).get_data(
        as_text=True)
    parsed = Page(html)
    text = parsed.plain
    positions = [text.index(" ".join(s["text"].split())) for s in snippets]
    assert positions == sorted(positions)
    for s in snippets:
        for c in s["caveats"]:
            assert " ".join((c["plain_text"] or c["text"]).split()) in text
            if c["plain_text"] and c["plain_text"] != c["text"]:
                assert " ".join(c["text"].split()) not in text  # the clinician text is not
    assert "Where this comes from" in text
    assert f"Date: {datetime.now(UTC).date().isoformat()}" in text
    assert "not medical advice" in text
    assert parsed.all("html")[0]["lang"] == "en"
    assert parsed.all("time")
    with client.get("/assets/handout.css") as sheet:
        css = sheet.get_data(as_text=True)
    assert "@page" in css and "@media print" in css


def test_a_repeated_id_is_shown_once(client):
    html = client.get(f"/handout?snippet={FIBRO_SLEEP}&snippet={FIBRO_SLEEP}").get_data(
        as_text=True)
    assert html.count('class="handout-item"') == 1


@pytest.mark.parametrize(("query", "status", "says"), [
    ("", 400, "at least one snippet"),
    ("snippet=", 400, "at least one snippet"),
    ("&".join(["snippet=" + FIBRO_SLEEP] * 21), 400, "at most 20"),
    (f"snippet={FIBRO_SLEEP}&snippet=nope-1&snippet=nope-2", 404, "'nope-1', 'nope-2'"),
])
def test_handout_errors_are_pages_that_say_why(client, query, status, says):
    parsed = page(client, f"/handout?{query}", status)
    assert says in parsed.plain


# -- the handout as a FHIR DocumentReference --------------------------------------------------

def test_v1_handout_is_a_valid_fhir_r4_document_reference(client):
    documentreference = pytest.importorskip("fhir.resources.R4B.documentreference",
                                            reason="fhir.resources (test extra) is missing")
    ids = _two_ids(client)
    response = client.get("/v1/handout?" + "&".join(f"snippet={i}" for i in ids))
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    resource = documentreference.DocumentReference.parse_obj(body)
    assert resource.status == "current"
    assert resource.type.text and not resource.type.coding  # no code claimed
    (content,) = resource.content
    attachment = content.attachment
    assert attachment.contentType == "text/html; charset=utf-8"
    assert attachment.language == "en"
    assert attachment.title.startswith("Health information for you")
    assert attachment.creation is not None
    html = base64.b64decode(body["content"][0]["attachment"]["data"])
    assert attachment.size == len(html)
    assert body["content"][0]["attachment"]["hash"] == base64.b64encode(
        hashlib.sha1(html).digest()).decode()
    page_html = html.decode("utf-8")
    assert '<html lang="en">' in page_html and "Where this comes from" in page_html
    # Filed in a chart: styled inline, and nothing points back at this server.
    assert "<style>" in page_html and "@page" in page_html
    assert not re.search(r'(href|src)="/', page_html)
    for i in ids:
        text = client.get(f"/v1/snippets/{i}").get_json()["text"]
        assert text.split()[0] in page_html


def test_v1_handout_answers_fhir_json_when_asked_for_it(client):
    response = client.get(f"/v1/handout?snippet={FIBRO_SLEEP}",
                          headers={"Accept": "application/fhir+json"})
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    assert "ETag" not in response.headers  # each answer carries the time it was made


def test_v1_handout_errors_are_problems_naming_the_parameter(client):
    assert_bad_parameter(client.get("/v1/handout"), "snippet")
    assert_bad_parameter(client.get("/v1/handout?" + "&".join(["snippet=a"] * 21)), "snippet")
    body = assert_bad_parameter(client.get("/v1/handout?snippet=nope-1&snippet=" + FIBRO_SLEEP),
                                "snippet", status=404)
    assert "'nope-1'" in body["detail"]
    assert_problem(client.get("/v1/handout?snippet=x&other=1"), 400)


# -- /docs ----------------------------------------------------------------------------------

def test_docs_loads_swagger_ui_from_this_server_and_the_spec_as_json(client):
    parsed = page(client, "/docs")
    scripts = [s["src"] for s in parsed.all("script")]
    assert scripts == ["/docs/swagger-ui/swagger-ui-bundle.js", "/docs/static/docs-init.js"]
    with client.get(scripts[0]) as bundle:
        assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.get_data()
    with client.get(scripts[1]) as init:
        assert b"validatorUrl: null" in init.get_data()
    (root,) = [d for d in parsed.all("div") if d.get("id") == "swagger-ui"]
    import yaml

    assert client.get(root["data-spec-url"]).get_json() == yaml.safe_load(
        client.get("/openapi.yaml").get_data(as_text=True))
    assert client.get("/docs/swagger-ui/index.html").status_code == 404


def test_a_reading_level_alone_lists_paragraphs_at_most_that_hard(client):
    parsed = page(client, "/?max_grade=12")
    grades = [t for t in parsed.text if "US school grade" in t]
    assert grades and all(float(re.search(r"grade ([\d.]+)", g).group(1)) <= 12 for g in grades)


def test_pages_say_so_when_the_index_is_not_available(make, tmp_path):
    client = make(INDEX_DIR=str(tmp_path)).test_client()
    for path in ("/", f"/snippets/{FIBRO_SLEEP}", f"/handout?snippet={FIBRO_SLEEP}"):
        response = client.get(path)
        assert response.status_code == 503 and response.mimetype == "text/html", path
        assert "The index is not available" in Page(response.get_data(as_text=True)).plain
    assert client.get("/docs").status_code == 200
