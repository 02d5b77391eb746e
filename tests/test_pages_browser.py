"""The pages in a real browser (Playwright driving Debian's chromium) against a real gunicorn:
a clinician's question, an Infobutton link, a handout printed to PDF, /docs, axe-core on every
page, and no request to another host nor console error anywhere.

One browser per test session; each test gets a fresh context (the page's CSP enforced). The
axe checks use a context that bypasses CSP, only so that axe's script can be injected.
Skipped without chromium, npm or Playwright, unless SNIPPETS_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from browser_helpers import CHROMIUM_ARGS, axe_script, chromium_path, unavailable
from server_helpers import Server, skip_server

pytestmark = skip_server

FIBRO_SLEEP = "003_c10700c13901ee51-72b1e422383a"
FIBRO_SOURCE = "003_c10700c13901ee51"
QUESTION = "Can VNS improve sleep in fibromyalgia?"
INFOBUTTON = ("/infobutton?mainSearchCriteria.v.c=M79.7"
              "&mainSearchCriteria.v.cs=2.16.840.1.113883.6.90")
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (test extra)")
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def live(built_index, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("pages-serve")
    with Server(built_index, log_dir / "server.log", workers=2,
                env={"SNIPPETS_RATE_LIMIT": "off"}) as server:
        yield server


@pytest.fixture(scope="session")
def axe(browser) -> str:
    return str(axe_script())


class Tab:
    """One browser page on the live server, recording every request it makes and every
    console error or uncaught exception."""

    def __init__(self, context, base: str):
        self.context = context
        self.base = base
        self.page = context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.expected_status: dict[str, int] = {}  # error pages opened on purpose
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def _console(self, message) -> None:
        if message.type != "error":
            return
        status = self.expected_status.get(message.location.get("url", ""))
        if status and message.text.startswith(
                f"Failed to load resource: the server responded with a status of {status}"):
            return  # chromium logs the status of an error page we asked for
        self.errors.append(f"console: {message.text}")

    def go(self, path: str, status: int = 200):
        self.expected_status[self.base + path] = status
        response = self.page.goto(self.base + path)
        assert response is not None and response.status == status, (path, response)
        return response

    def assert_clean(self) -> None:
        foreign = [u for u in self.requests
                   if not (u.startswith(self.base + "/") or u.startswith(("data:", "about:")))]
        assert not foreign, f"requests to other hosts: {foreign}"
        assert not self.errors, self.errors


@pytest.fixture
def tab(browser, live):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    opened = Tab(context, live.base)
    yield opened
    try:
        opened.assert_clean()
    finally:
        context.close()


# -- what a clinician does ---------------------------------------------------------------------

def test_a_question_typed_on_the_search_page_finds_the_paragraph_with_caveats_and_citation(tab):
    tab.go("/")
    page = tab.page
    page.get_by_label("Question or words").fill(QUESTION)
    page.get_by_label("Condition").select_option("fibromyalgia")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/\?q="))
    first = page.locator("li.result").first
    assert "improve sleep quality" in first.locator(".snippet-text").inner_text()
    assert first.locator("mark").count() >= 1
    warning = first.locator(".caveat-warning").first
    assert warning.locator(".severity").inner_text() == "Warning"
    assert "not an approved treatment for fibromyalgia" in warning.inner_text()
    assert "Caveat source:" in warning.inner_text()
    assert "reading level" in first.locator(".grade").inner_text()
    citation = first.locator(".citation a").first
    assert "Can Vagus Nerve Stimulation Be Used to Treat Fibromyalgia?" in citation.inner_text()
    citation.click()
    page.wait_for_url(re.compile(rf"/sources/{FIBRO_SOURCE}#{FIBRO_SLEEP}$"))
    target = page.locator(f"[id='{FIBRO_SLEEP}']")
    assert "improve sleep quality" in target.inner_text()
    assert target.locator("aside .caveat").count() >= 1
    tab.assert_clean()


def test_an_infobutton_entry_link_leads_to_the_snippet_page(tab):
    feed = tab.go(INFOBUTTON + "&informationRecipient=PROV"
                  "&knowledgeResponseType=application/json").json()
    entry = feed["feed"]["entry"][0]
    page_link, api_link = (link["href"] for link in entry["link"])
    # For people, the entry links to the snippet's page; the JSON is the related link.
    assert urlsplit(page_link).path.startswith("/snippets/")
    snippet = tab.go(urlsplit(api_link).path).json()
    assert urlsplit(page_link).path == f"/snippets/{snippet['id']}"
    page = tab.page
    tab.go(f"/snippets/{snippet['id']}")
    assert page.locator("h1").inner_text() == (snippet["citation"]["section"]
                                               or snippet["citation"]["title"])
    assert " ".join(snippet["text"].split()) in " ".join(
        page.locator("article.snippet").inner_text().split())
    caveats = page.locator(".caveats li")
    assert caveats.count() == len(snippet["caveats"])
    assert page.get_by_role("heading", name="Where it comes from").is_visible()
    assert page.get_by_role("heading", name="Next paragraph").is_visible()
    page.get_by_role("link", name="Make a patient handout of this paragraph").click()
    page.wait_for_url(re.compile(r"/handout\?snippet="))
    assert page.locator(".handout-item").count() == 1
    tab.assert_clean()


def test_a_handout_made_from_two_results_prints_to_a_clean_pdf(tab):
    page = tab.page
    tab.go("/?q=vagus+nerve+stimulation+pain")
    boxes = page.get_by_role("checkbox")
    assert boxes.count() >= 2
    chosen = [boxes.nth(i).get_attribute("value") for i in (0, 2)]
    boxes.nth(0).check()
    boxes.nth(2).check()
    page.get_by_role("button", name="Make a handout from the ticked paragraphs").click()
    page.wait_for_url(re.compile(r"/handout\?"))
    assert parse_qs(urlsplit(page.url).query)["snippet"] == chosen
    assert page.locator("html").get_attribute("lang") == "en"
    items = page.locator(".handout-item")
    assert items.count() == 2
    for i, snippet_id in enumerate(chosen):
        snippet = json.loads(tab.context.request.get(
            f"{tab.base}/v1/snippets/{snippet_id}").text())
        text = " ".join(items.nth(i).inner_text().split())
        assert " ".join(snippet["text"].split()) in text
        for caveat in snippet["caveats"]:
            assert " ".join((caveat["plain_text"] or caveat["text"]).split()) in text
    assert page.get_by_role("heading", name="Where this comes from").is_visible()
    assert page.locator(".handout-sources li").count() == 2
    assert "not medical advice" in page.locator(".handout-footer").inner_text()
    assert page.locator("nav").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("nav").is_visible()
    assert not page.locator(".site-header").is_visible()
    assert page.locator(".handout-item").first.is_visible()
    for paper in ("Letter", "A4"):
        pdf = page.pdf(format=paper)
        assert pdf.startswith(b"%PDF")
        # The navigation links would be link annotations; the printed handout has none.
        assert b"/URI" not in pdf and b"/Annot" not in pdf
    tab.assert_clean()


def test_a_printed_page_with_links_does_carry_link_annotations(tab):
    # The check above can fail: chromium writes a printed link as a /URI annotation.
    tab.go("/?q=sleep")
    assert b"/URI" in tab.page.pdf(format="A4")


def test_docs_shows_every_operation_with_its_parameters_and_response_schemas(tab, live):
    spec = yaml.safe_load(live.get("/openapi.yaml").text)
    page = tab.page
    tab.go("/docs")
    page.wait_for_selector(".opblock")
    operations = [(method, path, op) for path, item in spec["paths"].items()
                  for method, op in item.items() if method in METHODS]
    assert page.locator(".opblock").count() == len(operations) >= 12
    for method, path, op in operations:
        block = page.locator(f".opblock.opblock-{method}").filter(
            has=page.locator(f".opblock-summary-path[data-path='{path}']"))
        assert block.count() == 1, (method, path)
        assert block.locator(".opblock-summary-method").inner_text().lower() == method
        assert op["summary"] in block.locator(".opblock-summary-description").inner_text()
        block.locator(".opblock-summary-control").click()
        block.locator(".responses-table").wait_for()
        for parameter in op.get("parameters", []):
            assert block.locator(f"tr[data-param-name='{parameter['name']}']").count() == 1, (
                path, parameter["name"])
        for status in op["responses"]:
            if status != "default":
                assert block.locator(f"tr.response[data-code='{status}']").count() == 1, (
                    path, status)
        ok = block.locator("tr.response[data-code='200']")
        ok.get_by_role("tab", name="Schema").first.click()
        assert ok.locator(".model-box").first.is_visible(), path
    body = page.locator("body").inner_text()
    assert "#/components" not in body
    assert "Could not resolve reference" not in body
    tab.assert_clean()


def test_docs_try_it_out_calls_this_server(tab, live):
    page = tab.page
    tab.go("/docs")
    block = page.locator("#operations-snippets-searchSnippets")
    block.locator(".opblock-summary-control").click()
    block.locator(".responses-table").wait_for()
    block.get_by_role("button", name="Try it out").click()
    block.locator("tr[data-param-name='q'] input").fill("sleep")
    block.get_by_role("button", name="Execute").click()
    answer = block.locator(".live-responses-table")
    answer.wait_for()
    status = answer.locator("tbody .response-col_status").first
    assert status.inner_text().strip() == "200"
    assert '"total"' in answer.inner_text()
    assert live.base + "/v1/snippets?q=sleep" in block.locator(".request-url").inner_text()
    tab.assert_clean()


# -- accessibility -----------------------------------------------------------------------------

AXE_PAGES = {  # name: (path, status)
    "search": ("/", 200),
    "results": ("/?q=sleep&condition=fibromyalgia", 200),
    "bad search": ("/?max_grade=abc", 400),
    "snippet": (f"/snippets/{FIBRO_SLEEP}", 200),
    "source": (f"/sources/{FIBRO_SOURCE}", 200),
    "handout": (f"/handout?snippet={FIBRO_SLEEP}&snippet=001_38169ab113aa31ef-6eb0a9dee8a6",
                200),
    "not found": ("/snippets/nope", 404),
    "docs": ("/docs", 200),
}

DOCS_OPENED = ["snippets-searchSnippets", "sources-getSource", "cds_hooks-postCdsService",
               "handout-getHandout"]


@pytest.mark.parametrize("name", list(AXE_PAGES))
def test_axe_finds_no_serious_or_critical_violations(browser, live, axe, name):
    context = browser.new_context(bypass_csp=True, viewport={"width": 1000, "height": 900})
    try:
        tab = Tab(context, live.base)
        tab.go(*AXE_PAGES[name])
        if name == "docs":
            tab.page.wait_for_selector(".opblock")
            # One operation of each shape open (query array, path, JSON body): what Swagger UI
            # draws for them is checked too. Every one open takes seconds more for the same.
            for block in DOCS_OPENED:
                opened = tab.page.locator(f"#operations-{block}")
                opened.locator(".opblock-summary-control").click()
                opened.locator(".responses-table").wait_for()
        tab.page.add_script_tag(path=axe)
        results = tab.page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        bad = [f"{v['id']} ({v['impact']}): {v['help']} at "
               f"{[n['target'] for n in v['nodes']][:3]}"
               for v in results["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, "\n".join(bad)
        tab.assert_clean()
    finally:
        context.close()


def test_keyboard_users_reach_the_skip_link_first_and_see_focus(tab):
    page = tab.page
    tab.go("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.className")
    assert "skip-link" in focused
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "q"
