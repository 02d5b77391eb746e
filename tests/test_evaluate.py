"""The in-memory query evaluator: Whoosh's scores where Whoosh means what we mean, our meaning of
DisjunctionMax and coordination where it does not, and a bounded posting cache."""

from __future__ import annotations

import pytest
from whoosh import query as wq
from whoosh import scoring
from whoosh.searching import Searcher
from whoosh.util.numeric import byte_to_length

from index import query as planner
from index import store
from index.evaluate import Evaluator, PostingLists, Unsupported
from index.scoring import InMemoryBM25F, _length_bytes
from index.search import IndexReader


@pytest.fixture(scope="module")
def searcher(built_index):
    reader = IndexReader(built_index)
    generation = reader.generation()
    yield generation._searcher
    reader.close()


@pytest.fixture
def evaluator(searcher):
    return Evaluator(searcher, PostingLists(searcher, searcher.weighting))


def whoosh_scores(searcher, q):
    return {docnum: score for score, docnum in searcher.search(q, limit=None).top_n}


def assert_same(got, want):
    assert set(got) == set(want)
    for docnum, score in want.items():
        assert got[docnum] == pytest.approx(score, rel=1e-12)


@pytest.mark.parametrize("q", [
    wq.Term("text", "pain"),
    wq.Term("title", "fibromyalgia", boost=0.5),
    wq.Phrase("text", ["vagu", "nerv", "stimul"], boost=3.0),
    wq.Phrase("text", ["chronic", "pain"]),
    wq.Phrase("text", ["pain", "chronic"]),  # the words exist, not in this order
    wq.And([wq.Term("text", "pain"), wq.Term("text", "sleep")]),
    wq.And([wq.Term("section", "chronic"), wq.Term("section", "pain")], boost=0.8),
    wq.AndMaybe(wq.Term("text", "pain"), wq.Phrase("text", ["chronic", "pain"], boost=3.0)),
    wq.Or([wq.Term("text", "sleep"), wq.Term("text", "fatigu"), wq.Term("title", "ptsd")]),
    wq.Term("text", "notawordanywhere"),
    wq.Term("focus", "fibromyalgia", boost=2.0),  # an unscored field: the posting weight
])
def test_scores_are_whooshs_where_whoosh_means_the_same(searcher, evaluator, q):
    want = whoosh_scores(searcher, q)
    # Only the unknown word and the reversed phrase find nothing.
    assert want or repr(q) in {repr(wq.Term("text", "notawordanywhere")),
                               repr(wq.Phrase("text", ["pain", "chronic"]))}
    assert_same(evaluator.scores(q), want)


def test_a_restriction_keeps_only_allowed_documents_with_the_same_scores(searcher, evaluator):
    q = wq.AndMaybe(wq.Term("text", "vn"), wq.Phrase("text", ["vagu", "nerv"]))
    everything = evaluator.scores(q)
    allowed = set(sorted(everything)[::3]) | {10_000}  # and one number no document has
    assert evaluator.scores(q, allowed) == {d: s for d, s in everything.items() if d in allowed}


def test_dismax_is_the_best_alternative_plus_tiebreak_times_the_rest(evaluator):
    text, section = wq.Term("text", "pain"), wq.Term("section", "pain", boost=0.8)
    by_text, by_section = evaluator.scores(text), evaluator.scores(section)
    both = set(by_text) & set(by_section)
    assert both, "the seeds have paragraphs under a heading that says pain"
    scores = evaluator.scores(wq.DisjunctionMax([text, section], tiebreak=0.1))
    assert set(scores) == set(by_text) | set(by_section)
    for docnum in both:
        best, other = sorted([by_text[docnum], by_section[docnum]], reverse=True)
        assert scores[docnum] == pytest.approx(best + 0.1 * other)


def test_coordination_ranks_documents_with_more_of_the_subqueries_higher(evaluator):
    parts = [wq.Term("text", "pain"), wq.Term("text", "sleep"), wq.Term("text", "fatigu")]
    plain = evaluator.scores(wq.Or(parts))
    scaled = evaluator.scores(wq.Or(parts, scale=0.9))
    matched = {d: sum(d in evaluator.scores(p) for p in parts) for d in plain}
    for docnum, score in scaled.items():
        # Whoosh's SQR formula, counting the three subqueries.
        bonus = (matched[docnum] - 1) / (3 - 0.9) ** 2
        assert score == pytest.approx((plain[docnum] + bonus) * 2 / 3)
    assert max(matched.values()) > 1


def test_an_unknown_node_is_left_to_whoosh(evaluator):
    with pytest.raises(Unsupported):
        evaluator.scores(wq.Not(wq.Term("text", "pain")))
    with pytest.raises(Unsupported):
        evaluator.scores(wq.Phrase("text", ["chronic", "pain"], slop=3))


def test_the_posting_cache_stays_within_its_budget(searcher):
    postings = PostingLists(searcher, searcher.weighting, budget=40)
    sizes = {w: len(postings.get("text", w)[0]) for w in ("vn", "pain", "nerv", "sleep")}
    assert sum(sizes.values()) > 40
    assert postings.cache.held <= 40 or len(postings.cache) == 1
    assert postings.get("text", "pain")[0].tolist() == sorted(postings.get("text", "pain")[0])


def test_field_lengths_in_memory_give_whooshs_bm25f(searcher):
    q = wq.Or([wq.Term("text", "stimul"), wq.Term("title", "fibromyalgia")])
    ours = whoosh_scores(searcher, q)
    # Whoosh's own BM25F, reading each length from the index file.
    plain = Searcher(searcher.reader(), weighting=scoring.BM25F(), closereader=False)
    assert_same(ours, whoosh_scores(plain, q))
    assert isinstance(searcher.weighting, InMemoryBM25F)


def test_a_phrase_kept_for_later_queries_answers_them_as_whoosh_does(searcher, evaluator):
    phrase = wq.Phrase("text", ["vagu", "nerv"])
    want = whoosh_scores(searcher, phrase)
    assert_same(evaluator.scores(phrase), want)  # checked over every candidate, then kept
    allowed = set(sorted(want)[::2])
    assert_same(evaluator.scores(phrase, allowed), {d: want[d] for d in allowed})
    assert_same(evaluator.scores(phrase), want)


@pytest.mark.parametrize("text", [
    "vns", "vagal nerve stimulator for ptsd", '"chronic pain" sleep', "how common is fibro",
    "does vns reduce opioid use", "is vns right for me"])
def test_every_query_the_planner_builds_is_scored_here_not_left_to_whoosh(built_index, text):
    reader = IndexReader(built_index)
    generation = reader.generation()
    try:
        plan = generation._expander.plan(*planner.split_query(text))
        searcher = generation._searcher
        evaluator = Evaluator(searcher, PostingLists(searcher, searcher.weighting))
        for q in (planner.build(plan, False, ["ptsd"]),
                  planner.build(plan, True, [], generation._common_concepts(plan)),
                  planner.like(planner.build(plan, True, []), [("sleep", 0.5), ("pain", 1.0)])):
            assert isinstance(evaluator.scores(q), dict)
    finally:
        reader.close()


def test_columns_read_in_one_go_hold_what_whoosh_reads_per_document(searcher):
    reader = searcher.reader()
    assert store.column_codes(reader, "position") == list(reader.column_reader("position"))
    codes = store.column_codes(reader, "dup_key")
    keys = list(reader.column_reader("dup_key"))
    assert len(codes) == len(keys) == reader.doc_count_all()
    # Equal codes exactly where the duplicate keys are equal.
    assert len(set(zip(codes, keys, strict=True))) == len(set(codes)) == len(set(keys))
    # (The seeds repeat no paragraph; test_retrieval's duplicate tests collapse through these.)
    for fieldname in ("text", "section", "title"):
        lengths = _length_bytes(reader, fieldname)
        assert [byte_to_length(b) if b else 0 for b in lengths] == [
            reader.doc_field_length(d, fieldname, 0) or 0 for d in range(len(lengths))]
