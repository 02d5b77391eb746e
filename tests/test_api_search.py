"""GET /v1/snippets: every parameter, ranking, highlighting, paging and hostile query text."""

from __future__ import annotations

import html
import re
import shutil

import pytest
from api_helpers import (
    ACCEPTANCE,
    ICD10CM,
    SEEDS,
    SLEEP_SOURCE,
    SNOMED,
    add_article,
    app_for,
    assert_bad_parameter,
    assert_citation_matches,
    manifest,
)

from index.build import build

FIBRO_SOURCE = "003_c10700c13901ee51"
PTSD_SOURCE = "004_d463bc660c48071c"


def search(client, **params):
    response = client.get("/v1/snippets", query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.get_json()


def ids(body):
    return [r["id"] for r in body["results"]]


def all_pages(client, page_size, **params):
    """Walk every page of a search; returns (ids in order, totals seen on each page)."""
    found, totals, offset = [], [], 0
    while True:
        body = search(client, limit=page_size, offset=offset, **params)
        totals.append(body["total"])
        found += ids(body)
        assert len(body["results"]) <= page_size
        if len(body["results"]) < page_size:
            return found, totals
        offset += page_size


# -- the acceptance query --------------------------------------------------------------------

def test_acceptance_query_returns_the_cited_caveated_sleep_paragraph_first(client, built_index):
    body = search(client, **ACCEPTANCE)
    assert body["total"] >= 1
    first = body["results"][0]
    assert first["citation"]["source_id"] == SLEEP_SOURCE
    assert "sleep quality" in first["text"]
    assert "<mark>sleep</mark>" in first["highlight"]
    assert "fibromyalgia" in first["conditions"]
    caveat_ids = [c["id"] for c in first["caveats"]]
    assert "investigational-fibromyalgia" in caveat_ids
    warning = next(c for c in first["caveats"] if c["id"] == "investigational-fibromyalgia")
    assert warning["severity"] == "warning" and warning["source"]
    assert_citation_matches(first)
    assert first["citation"]["title"] == \
        "Can Vagus Nerve Stimulation Be Used to Treat Fibromyalgia?"
    assert first["citation"]["url"] is None
    assert isinstance(first["score"], float) and first["score"] > 0
    assert body["query"]["q"] == "sleep"
    assert body["query"]["words"] == ["sleep"]
    assert body["query"]["condition"] == ["fibromyalgia"]
    assert body["match"] == "all"
    assert body["index"]["version"] == manifest(built_index)["version"]


@pytest.mark.parametrize("params", [
    {"q": "vagus"},
    {"condition": "ptsd"},
    {"code": "icd10cm|E11.9"},
    {"q": "zzzzqqq"},
])
def test_every_answer_has_the_disclaimer_and_the_index_version(client, built_index, params):
    body = search(client, **params)
    disclaimer = [c for c in body["caveats"] if c["id"] == "general-disclaimer"]
    assert len(disclaimer) == 1
    assert disclaimer[0]["kind"] == "disclaimer" and disclaimer[0]["text"]
    assert body["index"]["version"] == manifest(built_index)["version"]
    assert body["index"]["built_at"]
    # Response-level caveats are not repeated on each snippet.
    for result in body["results"]:
        assert "general-disclaimer" not in [c["id"] for c in result["caveats"]]


# -- condition, code, source -----------------------------------------------------------------

def test_condition_is_repeatable_and_means_any_of(client):
    fibro = set(ids(search(client, condition="fibromyalgia", limit=50)))
    ptsd = set(ids(search(client, condition="ptsd", limit=50)))
    both = search(client, condition=["fibromyalgia", "ptsd"], limit=50)
    assert set(ids(both)) == fibro | ptsd
    assert both["total"] == len(fibro | ptsd)
    assert both["query"]["condition"] == ["fibromyalgia", "ptsd"]
    for result in both["results"]:
        assert {"fibromyalgia", "ptsd"} & set(result["conditions"])


@pytest.mark.parametrize("token", [
    "icd10cm|M79.7",
    "icd10cm|m79.7",
    f"{ICD10CM}|M79.7",
    "2.16.840.1.113883.6.90|M79.7",
    "urn:oid:2.16.840.1.113883.6.90|M79.7",
    "snomed|203082005",
    f"{SNOMED}|203082005",
    "2.16.840.1.113883.6.96|203082005",
])
def test_code_in_any_system_spelling_finds_fibromyalgia(client, token):
    by_code = search(client, code=token, limit=50)
    by_slug = search(client, condition="fibromyalgia", limit=50)
    assert by_code["query"]["condition"] == ["fibromyalgia"]
    assert ids(by_code) == ids(by_slug)
    assert by_code["total"] == 10
    assert by_code["unmatched_codes"] == []
    system = SNOMED if "203082005" in token else ICD10CM
    code = "203082005" if system == SNOMED else "M79.7"
    assert by_code["query"]["code"] == [f"{system}|{code}"]


def test_icd10cm_code_matches_by_prefix(client):
    body = search(client, code="icd10cm|F43.10", limit=50)
    assert body["query"]["condition"] == ["ptsd"]
    assert body["query"]["code"] == [f"{ICD10CM}|F43.10"]
    assert body["unmatched_codes"] == []
    assert body["total"] == 9
    assert all("ptsd" in r["conditions"] for r in body["results"])
    assert any(r["citation"]["source_id"] == PTSD_SOURCE for r in body["results"])


@pytest.mark.parametrize(("token", "canonical"), [
    ("icd10cm|E11.9", f"{ICD10CM}|E11.9"),
    ("snomed|44054006", f"{SNOMED}|44054006"),
    ("2.16.840.1.113883.6.90|e11.9", f"{ICD10CM}|E11.9"),
])
def test_well_formed_unmapped_code_is_listed_not_refused(client, token, canonical):
    body = search(client, code=token)
    assert body["unmatched_codes"] == [canonical]
    assert body["query"]["code"] == [canonical]
    assert body["total"] == 0 and body["results"] == []
    assert [c["id"] for c in body["caveats"]] == ["general-disclaimer"]


def test_unmapped_code_next_to_a_mapped_one_still_searches_the_mapped_one(client):
    body = search(client, code=["icd10cm|E11.9", "icd10cm|M79.7"], limit=50)
    assert body["unmatched_codes"] == [f"{ICD10CM}|E11.9"]
    assert body["query"]["condition"] == ["fibromyalgia"]
    assert body["total"] == 10


def test_code_and_condition_together_search_both(client):
    body = search(client, code="icd10cm|F43.1", condition="fibromyalgia", limit=50)
    assert body["query"]["condition"] == ["fibromyalgia", "ptsd"]
    assert body["total"] == len(set(ids(body)))
    assert {"fibromyalgia", "ptsd"} <= {c for r in body["results"] for c in r["conditions"]}


def test_source_filter_keeps_only_that_source(client):
    body = search(client, q="vagus", source=PTSD_SOURCE, limit=50)
    assert body["total"] > 0
    assert {r["citation"]["source_id"] for r in body["results"]} == {PTSD_SOURCE}
    both = search(client, source=[PTSD_SOURCE, FIBRO_SOURCE], limit=50)
    assert both["total"] == 8 + 7
    assert {r["citation"]["source_id"] for r in both["results"]} == {PTSD_SOURCE, FIBRO_SOURCE}


@pytest.mark.parametrize("max_grade", [11.5, 13, 14.5, 30])
def test_max_grade_keeps_only_easier_snippets(client, max_grade):
    unfiltered = search(client, q="vagus", limit=50)
    body = search(client, q="vagus", max_grade=max_grade, limit=50)
    expected = [r["id"] for r in unfiltered["results"] if r["reading_grade"] <= max_grade]
    assert set(ids(body)) == set(expected)
    assert body["total"] == len(expected)
    assert all(r["reading_grade"] <= max_grade for r in body["results"])
    assert body["query"]["max_grade"] == max_grade


def test_max_grade_filters_a_browse_too(client):
    body = search(client, condition="chronic-pain", max_grade=14, limit=50)
    assert 0 < body["total"] < 19
    assert all(r["reading_grade"] <= 14 for r in body["results"])


def test_limit_and_offset(client):
    # "vagus" also finds "VNS" and "vagal" (expansion): every seed paragraph says one of them.
    everything = search(client, q="vagus", limit=50)
    assert everything["total"] == 45 == len(everything["results"])
    page = search(client, q="vagus", limit=3, offset=4)
    assert page["limit"] == 3 and page["offset"] == 4
    assert ids(page) == ids(everything)[4:7]
    assert search(client, q="vagus")["limit"] == 10
    assert len(search(client, q="vagus")["results"]) == 10
    past_the_end = search(client, q="vagus", offset=45)
    assert past_the_end["results"] == [] and past_the_end["total"] == 45


# -- browsing (no q) -------------------------------------------------------------------------

def test_browse_by_condition_puts_snippets_that_mention_it_first(client):
    # Article 001 is about chronic pain, so all its snippets count for chronic-pain, but only
    # some of them say "chronic pain": those that do come first.
    body = search(client, condition="chronic-pain", limit=50)
    assert body["total"] == 19 == len(body["results"])
    mentions = [bool(re.search(r"chronic pain", r["text"], re.IGNORECASE))
                for r in body["results"]]
    assert True in mentions and False in mentions
    assert mentions == sorted(mentions, reverse=True)
    for result, mentioned in zip(body["results"], mentions, strict=True):
        assert "chronic-pain" in result["conditions"]
        assert result["score"] is None
        assert "<mark>" not in result["highlight"]
        if not mentioned:
            assert result["citation"]["source_id"] == "001_38169ab113aa31ef"
    # Among those that mention it, the ones in the article about chronic pain (001) come
    # first; within each group: source order, then paragraph order.
    groups = [(not m, r["citation"]["source_id"] != "001_38169ab113aa31ef")
              for r, m in zip(body["results"], mentions, strict=True)]
    assert groups == sorted(groups)
    assert groups[0] == (False, False) and (False, True) in groups
    for group in set(groups):
        places = [(r["citation"]["source_id"], r["citation"]["paragraph"])
                  for r, g in zip(body["results"], groups, strict=True) if g == group]
        assert places == sorted(places)
    assert body["query"]["q"] == "" and body["query"]["words"] == []
    assert body["match"] == "all" and body["suggestion"] is None
    again = [ids(search(client, condition="chronic-pain", limit=50)) for _ in range(3)]
    assert again == [ids(body)] * 3


def test_browse_by_code_equals_browse_by_its_condition(client):
    assert ids(search(client, code="icd10cm|G89.29", limit=50)) == \
        ids(search(client, condition="chronic-pain", limit=50))


def test_browse_by_source_is_in_reading_order(client):
    body = search(client, source=FIBRO_SOURCE, limit=50)
    detail = client.get(f"/v1/sources/{FIBRO_SOURCE}").get_json()
    assert ids(body) == detail["snippet_ids"]
    assert [r["citation"]["paragraph"] for r in body["results"]] == list(range(1, 8))


# -- text search -----------------------------------------------------------------------------

def test_stemming_matches_other_word_forms(client):
    # The seeds only ever say "migraines"; the singular finds them and the plural is marked.
    singular = search(client, q="migraine", limit=50)
    plural = search(client, q="migraines", limit=50)
    assert singular["total"] == plural["total"] == 3
    assert ids(singular) == ids(plural)
    assert all("<mark>migraines</mark>" in r["highlight"] for r in singular["results"])
    # Porter stems "stimulate" and "stimulation" alike.
    verb = search(client, q="stimulate", limit=50)
    noun = search(client, q="stimulation", limit=50)
    assert ids(verb) == ids(noun) and verb["total"] > 2
    # (Some match through their article's title, "... Vagus Nerve Stimulation ...", alone.)
    only_noun = [r for r in verb["results"] if "stimulate" not in r["text"].lower()
                 and "stimulation" in r["text"].lower()]
    assert only_noun
    assert all(re.search(r"<mark>stimulation</mark>", r["highlight"], re.IGNORECASE)
               for r in only_noun)
    assert ids(search(client, q="sleeping")) == ids(search(client, q="sleep"))


def test_quoted_phrase_ranks_adjacent_words_above_scattered_ones(client):
    adjacent = re.compile(r"\bpain relief\b", re.IGNORECASE)
    words = search(client, q="pain relief", limit=50)
    together = [adjacent.search(r["text"]) is not None for r in words["results"]]
    assert True in together and False in together
    assert together == sorted(together, reverse=True), "adjacent words rank above scattered"
    phrase = search(client, q='"pain relief"', limit=50)
    assert phrase["query"]["phrases"] == ["pain relief"]
    assert phrase["total"] == together.count(True)
    assert all(adjacent.search(r["text"]) for r in phrase["results"])
    assert ids(phrase) == [r["id"] for r, t in zip(words["results"], together, strict=True) if t]


def test_a_subject_nothing_matches_empties_the_answer_and_is_named(client):
    # "banana" is in no snippet: the sleep paragraph is no answer to "sleep banana".
    body = search(client, q="sleep banana")
    assert body["total"] == 0 and body["results"] == []
    assert body["not_found"] == ["banana"]
    # Fewer all-word matches than a page: they come first, snippets with the question's
    # subject (VNS) fill the list below them, in the order of the scores shown.
    narrow = search(client, q="vns sleep quality", limit=50)
    assert narrow["match"] == "any" and narrow["total"] > 1 and narrow["not_found"] == []
    first = narrow["results"][0]["text"].lower()
    assert "sleep" in first and "quality" in first
    scores = [r["score"] for r in narrow["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all("vns" in r["matched"] for r in narrow["results"])
    # Enough all-word matches: nothing partial is added.
    broad = search(client, q="vagus nerve", limit=50)
    assert broad["match"] == "all"


def test_misspelling_gets_a_suggestion(client):
    body = search(client, q="fibromyalga")
    assert body["total"] == 0
    assert body["suggestion"] == "fibromyalgia"
    assert search(client, q=body["suggestion"])["total"] > 0
    assert search(client, q="fibromyalgia")["suggestion"] is None


def test_results_are_ordered_by_score_and_stable(client):
    first = search(client, q="vagus nerve pain", limit=50)
    scores = [r["score"] for r in first["results"]]
    assert scores == sorted(scores, reverse=True)
    assert ids(search(client, q="vagus nerve pain", limit=50)) == ids(first)


# -- query text is never syntax --------------------------------------------------------------

HOSTILE = [
    "AND", "OR NOT", "sleep AND NOT pain", '"', '""', '"unclosed', "sleep\"", "(", ")",
    "(sleep OR pain)", "[x TO y]", "{a TO b}", "text:foo", "title:sleep", "*", "?", "sle*p",
    "sleep~2", "~2", "^3", "sleep^3", "\\", "{", "}", ":", "/", "//", "-", "+sleep -pain",
    "<script>alert(1)</script>", "&amp;", "'; DROP TABLE snippets; --", "%", "%00", "a" * 500,
    "naïve café", "fibromyalgie über straße", "睡眠", "😴 sleep 😴", "\u200b", "\u202esleep",
    "sleep\t\x0b\x0c\x1b\x7f", "\x01\x02\x03", "sleep\r\npain",
]


@pytest.mark.parametrize("q", HOSTILE, ids=[f"q{i}" for i in range(len(HOSTILE))])
def test_query_syntax_characters_are_harmless(client, q):
    response = client.get("/v1/snippets", query_string={"q": q})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["query"]["q"] == " ".join(q.split())
    for result in body["results"]:
        tags = set(re.findall(r"</?[^>]*>", result["highlight"]))
        assert tags <= {"<mark>", "</mark>"}
        plain = result["highlight"].replace("<mark>", "").replace("</mark>", "")
        assert html.unescape(plain) == result["text"]


def test_operators_are_plain_words_not_boolean_logic(client):
    # "NOT" and "OR" are words (stop words), so the sleep paragraph, which mentions pain,
    # is found by "sleep NOT pain", and "OR" widens nothing.
    negated = search(client, q="sleep NOT pain")
    assert ids(negated) == ids(search(client, q="sleep pain"))
    assert "pain" in negated["results"][0]["text"] and "sleep" in negated["results"][0]["text"]
    assert ids(search(client, q="sleep OR vagus", limit=50)) == \
        ids(search(client, q="sleep vagus", limit=50))
    fielded = search(client, q="title:fibromyalgia")
    assert fielded["query"]["words"] == ["title", "fibromyalgia"]


def test_query_of_500_characters_is_allowed_and_501_is_not(client):
    assert client.get("/v1/snippets", query_string={"q": "é" * 500}).status_code == 200
    assert_bad_parameter(client.get("/v1/snippets", query_string={"q": "é" * 501}), "q")


@pytest.mark.parametrize("q", ["*", "?", '""', "😴"])
def test_query_without_words_does_not_match_the_whole_index(client, q):
    response = client.get("/v1/snippets", query_string={"q": q})
    if response.status_code == 400:
        assert_bad_parameter(response, "q")
        return
    assert response.status_code == 200
    assert response.get_json()["total"] == 0


# -- totals stay true under filters ----------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"q": "vagus", "condition": "epilepsy"},
    {"q": "vagus", "code": "icd10cm|G40.909"},
    {"q": "vagus", "max_grade": 5},
    {"q": "vagus", "condition": "ptsd", "source": FIBRO_SOURCE},
], ids=["empty-condition", "code-of-empty-condition", "low-max-grade", "disjoint-filters"])
def test_total_counts_only_filtered_matches(client, params):
    body = search(client, **params)
    assert body["results"] == []
    assert body["total"] == 0


# -- paging ----------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"q": "vagus"},
    {"q": "pain relief"},
    {"condition": "chronic-pain"},
    {"q": "vagus", "condition": "chronic-pain", "max_grade": 16},
])
def test_pages_concatenate_to_one_big_page(client, params):
    whole = search(client, limit=50, **params)
    assert len(whole["results"]) == whole["total"] > 5
    paged, totals = all_pages(client, 5, **params)
    assert paged == ids(whole)
    assert len(set(paged)) == len(paged)
    assert set(totals) == {whole["total"]}


# -- highlighting is HTML-safe ---------------------------------------------------------------

HTML_SOURCE = "005_html_test"
HTML_TEXT = ('Some patients write <b>sleep</b> & "quotes" into their notes, where x &lt; y is '
             "literal text, and sleep still matters to them.")


@pytest.fixture(scope="module")
def html_client(tmp_path_factory):
    base = tmp_path_factory.mktemp("html")
    seeds = base / "seeds"
    shutil.copytree(SEEDS, seeds)
    add_article(seeds, HTML_SOURCE, "HTML Safety Test Article", HTML_TEXT)
    build(seeds, base / "index")
    with app_for(base / "index") as app:
        yield app.test_client()


def test_highlight_escapes_markup_and_marks_only_matches(html_client):
    body = search(html_client, q="sleep", source=HTML_SOURCE)
    assert body["total"] == 1
    result = body["results"][0]
    assert result["text"] == HTML_TEXT
    assert result["highlight"] == (
        'Some patients write &lt;b&gt;<mark>sleep</mark>&lt;/b&gt; &amp; "quotes" into their '
        "notes, where x &amp;lt; y is literal text, and <mark>sleep</mark> still matters to "
        "them.")
    assert set(re.findall(r"</?[^>]*>", result["highlight"])) == {"<mark>", "</mark>"}
    plain = result["highlight"].replace("<mark>", "").replace("</mark>", "")
    assert html.unescape(plain) == result["text"]


def test_browse_and_by_id_highlights_are_escaped_without_marks(html_client):
    browsed = search(html_client, source=HTML_SOURCE)["results"][0]
    by_id = html_client.get(f"/v1/snippets/{browsed['id']}").get_json()
    for snippet in (browsed, by_id):
        assert "<" not in snippet["highlight"]
        assert html.unescape(snippet["highlight"]) == HTML_TEXT
