"""Retrieval behaviour: expansions, exact-over-expansion ranking, focus, duplicates, suggestions."""

from __future__ import annotations

import re
import shutil

import pytest
from api_helpers import SEEDS, add_article, app_for

from index.build import build
from index.errors import SeedError
from index.query import BestOf, Term
from index.search import IndexReader, SearchQuery
from service.presenters import highlight

FIBRO_SOURCE = "003_c10700c13901ee51"
PTSD_SOURCE = "004_d463bc660c48071c"

SHARED = ("Regular gentle walking can ease stiffness, and a fixed bedtime helps many people "
          "rest better.")


@pytest.fixture(scope="module")
def seeds_gen(built_index):
    reader = IndexReader(built_index)
    yield reader.generation()
    reader.close()


def ids(result):
    return [h.id for h in result.hits]


def text(hit):
    return hit.record["text"]


def sources(result):
    return [h.record["source_id"] for h in result.hits]


@pytest.mark.parametrize(("typed", "finds"), [
    ("vagal", "vagus"),
    ("post-traumatic stress", "PTSD"),
    ("fibro", "fibromyalgia"),
    ("hoarseness", "voice changes"),
    ("nVNS", "non-invasive"),
    ("electrical stimulation of the vagus nerve", "VNS"),
])
def test_expansion_finds_what_the_text_calls_it(seeds_gen, typed, finds):
    result = seeds_gen.search(SearchQuery(typed, limit=50))
    typed_word = re.compile(rf"\b{re.escape(typed)}\b", re.IGNORECASE)
    # Some paragraph found says only the other name.
    assert any(finds.lower() in text(h).lower() and not typed_word.search(text(h))
               for h in result.hits)


def test_expansion_is_highlighted_as_a_whole_phrase_only(seeds_gen):
    result = seeds_gen.search(SearchQuery("post-traumatic stress", limit=50))
    # "disorder" alone (anxiety disorders) is not marked; the full expansion is.
    assert all("<mark>disorders</mark>" not in highlight(h) for h in result.hits)
    assert any("<mark>PTSD</mark>" in highlight(h) for h in result.hits)


def test_icd_code_typed_in_q_searches_its_condition(seeds_gen):
    by_code = seeds_gen.search(SearchQuery("M79.7 sleep"))
    by_name = seeds_gen.search(SearchQuery("fibromyalgia sleep"))
    assert ids(by_code) == ids(by_name) and by_code.total == by_name.total
    assert by_code.hits[0].record["source_id"] == FIBRO_SOURCE
    assert "sleep" in text(by_code.hits[0]) and "fibromyalgia" in text(by_code.hits[0])


def test_article_about_the_condition_ranks_first(seeds_gen):
    # Four articles mention PTSD or post-traumatic stress; the one about PTSD leads.
    result = seeds_gen.search(SearchQuery("ptsd", limit=50))
    assert len(set(sources(result))) > 1
    assert sources(result)[0] == PTSD_SOURCE
    assert sources(result)[:5].count(PTSD_SOURCE) >= 3


def test_a_concept_scores_each_snippet_by_its_own_best_match(seeds_gen):
    # Whoosh's own DisjunctionMax gave a paragraph the better score of another alternative
    # even when that alternative matched only a later paragraph; search scores it as meant.
    alternatives = (Term("text", "reduc"), Term("text", "decreas"), Term("title", "us", 0.5))
    evaluator = seeds_gen.evaluator
    alone = [dict(zip(r.docs.tolist(), r.scores.tolist(), strict=True))
             for r in (evaluator.scores(a) for a in alternatives)]
    for tiebreak in (0.0, 0.1):
        best = evaluator.scores(BestOf(alternatives, tiebreak=tiebreak))
        assert set(best.docs.tolist()) == set().union(*alone)
        for docnum, score in zip(best.docs.tolist(), best.scores.tolist(), strict=True):
            own = sorted((s[docnum] for s in alone if docnum in s), reverse=True)
            assert score == pytest.approx(own[0] + tiebreak * sum(own[1:]), rel=1e-9)


def test_suggestion_only_when_it_would_find_more(seeds_gen):
    assert seeds_gen.search(SearchQuery("fibromyalga")).suggestion == "fibromyalgia"
    # Known through the synonym list, so not "corrected" into something else.
    assert seeds_gen.search(SearchQuery("nVNS")).suggestion is None
    # A correction that finds nothing more is not offered.
    assert seeds_gen.search(SearchQuery("sleep zzzzqx")).suggestion is None


@pytest.fixture(scope="module")
def variant_index(tmp_path_factory):
    """The seeds plus three articles: the same paragraph twice (case and punctuation aside),
    and one paragraph that uses the exact word where another uses an expansion."""
    seeds = tmp_path_factory.mktemp("variant") / "seeds"
    shutil.copytree(SEEDS, seeds)
    add_article(seeds, "900_walk", "Walking for Better Rest", SHARED)
    add_article(seeds, "901_walk_copy", "Daily Habits",
                SHARED.upper().replace(",", "").replace(".", "!"))
    add_article(seeds, "902_vns_words", "Device Notes",
                "A VNS device can be switched off with a magnet when needed.\n\n"
                "A vagus nerve stimulation unit sends pulses on a schedule the team sets.")
    index_dir = tmp_path_factory.mktemp("variant-index")
    build(seeds, index_dir)
    return index_dir


def test_duplicates_collapse_into_one_result_listing_the_others(variant_index):
    reader = IndexReader(variant_index)
    try:
        gen = reader.generation()
        result = gen.search(SearchQuery("walking stiffness bedtime", limit=10))
        assert result.total == 1 and len(result.hits) == 1
        (hit,) = result.hits
        others = {"900_walk", "901_walk_copy"} - {hit.record["source_id"]}
        assert [a["source_id"] for a in hit.record["also_in"]] == sorted(others)
        assert hit.record["also_in_total"] == 1
        assert hit.record["also_in"][0]["paragraph"] == 1 and hit.record["also_in"][0]["title"]
        # Browsing collapses them too, and by-id lookups show the other citation.
        browse = gen.search(SearchQuery(sources=("900_walk", "901_walk_copy"), limit=10))
        assert browse.total == 1
        shown = gen.snippet(hit.record["id"])
        assert [a["id"] for a in shown["also_in"]] == [a["id"] for a in hit.record["also_in"]]
    finally:
        reader.close()


def test_exact_wording_ranks_above_an_expansion(variant_index):
    reader = IndexReader(variant_index)
    try:
        gen = reader.generation()
        for typed, exact in (("VNS", "VNS device"), ("vagus nerve stimulation", "vagus nerve")):
            result = gen.search(SearchQuery(typed, sources=("902_vns_words",)))
            assert result.total == 2, typed
            assert exact in result.hits[0].record["text"], typed
            assert result.hits[0].score > result.hits[1].score
    finally:
        reader.close()


def test_duplicates_collapse_over_http(variant_index):
    with app_for(variant_index) as app:
        body = app.test_client().get("/v1/snippets?q=bedtime+stiffness").get_json()
    assert body["total"] == 1
    (result,) = body["results"]
    assert result["also_in_total"] == 1
    assert set(result["also_in"][0]) == {"id", "source_id", "title", "paragraph"}


def test_bad_synonym_group_is_refused_with_file_and_line(seeds_copy, tmp_path):
    synonyms = seeds_copy / "synonyms.yaml"
    text = synonyms.read_text(encoding="utf-8")
    synonyms.write_text(text + "  - [lonely]\n", encoding="utf-8")
    with pytest.raises(SeedError) as raised:
        build(seeds_copy, tmp_path / "index")
    (problem,) = raised.value.problems
    assert problem.path == str(synonyms) and problem.line
    assert "at least two phrases" in problem.reason


def test_partial_matches_need_more_than_a_word_most_snippets_contain(seeds_gen):
    # "VNS" is in nearly every seed paragraph: the paragraphs that say "implanted" come
    # first, then those that only say "VNS", scored below them.
    result = seeds_gen.search(SearchQuery("how is the vns device implanted", limit=50))
    about = [bool(re.search(r"implant", text(h), re.IGNORECASE)) for h in result.hits]
    assert about[:3] == [True] * 3 and not any(about[3:])
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    # Everyday words alone never fill a page: "sleep quality" is the one paragraph.
    alone = seeds_gen.search(SearchQuery("sleep quality", limit=50))
    assert alone.total == 1 and alone.match == "all"


def test_narrow_question_gets_a_full_page_with_the_exact_matches_first(seeds_gen):
    # Few paragraphs say "implanted"; the page is filled with paragraphs that only say VNS,
    # those most like them (the surgical procedure, invasiveness) first.
    result = seeds_gen.search(SearchQuery("how is the vns device implanted", limit=10))
    assert len(result.hits) == 10 and result.match == "any"
    assert all(re.search(r"implant", text(h), re.IGNORECASE) for h in result.hits[:3])
    assert any(re.search(r"surgical procedure|invasive", text(h)) for h in result.hits[3:6])
    assert all("<mark>VNS</mark>" in highlight(h) or "<mark>Vagus" in highlight(h)
               for h in result.hits[3:])
    assert all("vns" in h.matched for h in result.hits)
    # The total is what the list pages through: every paragraph that says VNS.
    assert result.total == seeds_gen.search(SearchQuery("vns", limit=100)).total
    # One suitable paragraph; those that also tell patients to ask whether it suits them follow.
    suits = seeds_gen.search(SearchQuery("is vns right for me", limit=10))
    assert len(suits.hits) == 10 and "suitable for everyone" in suits.hits[0].record["text"]
    assert all("consult" in text(h) for h in suits.hits[1:3])


def test_filler_words_are_not_required(seeds_gen):
    # "use" carries no topic: the paragraph on reducing reliance on opioid medications answers
    # "does vns reduce opioid use" without saying it, and comes first.
    asked = seeds_gen.search(SearchQuery("does vns reduce opioid use"))
    assert ids(asked) == ids(seeds_gen.search(SearchQuery("vns reduce opioid")))
    first = asked.hits[0].record["text"]
    assert "reduce the reliance on opioid" in first and not re.search(r"\buse", first)


def test_no_fill_when_nothing_matched_the_telling_words(seeds_gen):
    # A page of paragraphs that only say VNS answers nothing: the misspelling gets a suggestion.
    result = seeds_gen.search(SearchQuery("vns fibromyalga"))
    assert result.total == 0 and result.suggestion == "vns fibromyalgia"


@pytest.mark.parametrize("typed", ["how is the vns device implanted", "is vns right for me",
                                   "sleep quality", "vagus nerve pain"])
def test_pages_of_a_filled_list_are_cut_from_one_order(seeds_gen, typed):
    whole = seeds_gen.search(SearchQuery(typed, limit=30))
    pages = [seeds_gen.search(SearchQuery(typed, limit=3, offset=offset))
             for offset in range(0, 30, 3)]
    assert [i for page in pages for i in ids(page)] == ids(whole)
    assert {page.total for page in pages} == {whole.total}
