"""The vectorised evaluator over the scoring arrays: Whoosh's own BM25F scores where a node means
what a Whoosh query means (the oracle), our meaning of BestOf and coordination where Whoosh has
none, filters, and the bounded cache of concept results."""

from __future__ import annotations

import numpy as np
import pytest
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh.fields import ID, TEXT, Schema

from index import query as planner
from index import store
from index.analysis import Analysis, make_analyzer
from index.evaluate import Evaluator, Scored
from index.query import AllOf, AllWords, AnyOf, BestOf, Boost, Phrase, Term
from index.search import IndexReader, split_query


@pytest.fixture(scope="module")
def generation(built_index):
    reader = IndexReader(built_index)
    yield reader.generation()
    reader.close()


@pytest.fixture(scope="module")
def whoosh_searcher(tmp_path_factory, seed_snippets):
    """Whoosh's own searcher (BM25F, its defaults) over an index of the same snippets built
    the ordinary Whoosh way: its analyzer on each field, positions in the text."""
    analyzer = make_analyzer()
    schema = Schema(text=TEXT(analyzer=analyzer, phrase=True, stored=True),
                    title=TEXT(analyzer=analyzer, phrase=False),
                    section=TEXT(analyzer=analyzer, phrase=False), focus=ID)
    ix = whoosh_index.create_in(str(tmp_path_factory.mktemp("plain-whoosh")), schema)
    with ix.writer() as writer:
        for snippet in seed_snippets:
            writer.add_document(**{name: snippet[name] for name in schema.names()
                                   if snippet[name] is not None})
    with ix.searcher() as searcher:
        yield searcher
    ix.close()


@pytest.fixture
def evaluator(generation):
    return Evaluator(generation.arrays)


def as_whoosh(node) -> wq.Query:
    """The Whoosh query that means what `node` means (only nodes Whoosh has a meaning for)."""
    if isinstance(node, Term):
        return wq.Term(node.field, node.stem, boost=node.weight)
    if isinstance(node, Phrase):
        return wq.Phrase("text", list(node.stems), boost=node.weight)
    if isinstance(node, AllWords):
        return wq.And([wq.Term(node.field, s) for s in node.stems], boost=node.weight)
    if isinstance(node, AllOf):
        return wq.And([as_whoosh(p) for p in node.parts])
    if isinstance(node, AnyOf):
        assert node.coordination is None
        return wq.Or([as_whoosh(p) for p in node.parts])
    if isinstance(node, Boost):
        return wq.AndMaybe(as_whoosh(node.core), as_whoosh(node.extra))
    raise AssertionError(node)


def whoosh_scores(searcher, node) -> dict[int, float]:
    return {docnum: score for score, docnum in
            searcher.search(as_whoosh(node), limit=None).top_n}


def as_dict(scored: Scored) -> dict[int, float]:
    return dict(zip(scored.docs.tolist(), scored.scores.tolist(), strict=True))


def assert_same(got: Scored, want: dict[int, float]) -> None:
    assert list(got.docs) == sorted(got.docs.tolist()), "documents come ascending"
    got = as_dict(got)
    assert set(got) == set(want)
    for docnum, score in want.items():
        assert got[docnum] == pytest.approx(score, rel=1e-12)


ORACLE = [
    Term("text", "pain"),
    Term("title", "fibromyalgia", 0.5),
    Term("section", "pain"),
    Phrase(("vagu", "nerv", "stimul"), 3.0),
    Phrase(("chronic", "pain")),
    Phrase(("pain", "chronic")),  # the words exist, not in this order
    AllOf((Term("text", "pain"), Term("text", "sleep"))),
    AllWords("section", ("chronic", "pain"), 0.8),
    Boost(Term("text", "pain"), Phrase(("chronic", "pain"), 3.0)),
    AnyOf((Term("text", "sleep"), Term("text", "fatigu"), Term("title", "ptsd"))),
    Term("text", "notawordanywhere"),
    Term("focus", "fibromyalgia", 2.0),  # a keyword field: each posting weighs 1
    AllOf((AnyOf((Term("text", "vn"), Term("title", "vn"))), Phrase(("vagu", "nerv")))),
]


@pytest.mark.parametrize("node", ORACLE, ids=repr)
def test_scores_are_whooshs_bm25f_where_whoosh_means_the_same(whoosh_searcher, evaluator,
                                                               node):
    want = whoosh_scores(whoosh_searcher, node)
    # Only the unknown word and the reversed phrase find nothing.
    assert want or node in (Term("text", "notawordanywhere"), Phrase(("pain", "chronic")))
    assert_same(evaluator.scores(node), want)


def test_a_filter_keeps_only_allowed_documents_with_the_same_scores(generation, evaluator):
    node = Boost(Term("text", "vn"), Phrase(("vagu", "nerv")))
    everything = as_dict(evaluator.scores(node))
    allowed = np.zeros(generation.arrays.documents, dtype=bool)
    allowed[sorted(everything)[::3]] = True
    assert as_dict(evaluator.scores(node, allowed)) == {
        d: s for d, s in everything.items() if allowed[d]}


def test_best_of_is_the_best_alternative_plus_tiebreak_times_the_rest(evaluator):
    text, section = Term("text", "pain"), Term("section", "pain", 0.8)
    by_text, by_section = as_dict(evaluator.scores(text)), as_dict(evaluator.scores(section))
    both = set(by_text) & set(by_section)
    assert both, "the seeds have paragraphs under a heading that says pain"
    scores = as_dict(evaluator.scores(BestOf((text, section), tiebreak=0.1)))
    assert set(scores) == set(by_text) | set(by_section)
    for docnum in both:
        best, other = sorted([by_text[docnum], by_section[docnum]], reverse=True)
        assert scores[docnum] == pytest.approx(best + 0.1 * other)
    only = as_dict(evaluator.scores(BestOf((text, section), tiebreak=0.0)))
    assert all(only[d] == max(by_text.get(d, 0), by_section.get(d, 0)) for d in only)


def test_coordination_ranks_documents_with_more_of_the_parts_higher(evaluator):
    parts = (Term("text", "pain"), Term("text", "sleep"), Term("text", "fatigu"))
    plain = as_dict(evaluator.scores(AnyOf(parts)))
    scaled = as_dict(evaluator.scores(AnyOf(parts, coordination=0.9)))
    matched = {d: sum(d in as_dict(evaluator.scores(p)) for p in parts) for d in plain}
    for docnum, score in scaled.items():
        # Whoosh's SQR formula, counting the three parts.
        bonus = (matched[docnum] - 1) / (3 - 0.9) ** 2
        assert score == pytest.approx((plain[docnum] + bonus) * 2 / 3)
    assert max(matched.values()) > 1


def test_concept_results_are_kept_within_their_budget(generation):
    evaluator = Evaluator(generation.arrays, budget=40)
    concepts = [BestOf((Term("text", w), Term("title", w))) for w in ("vn", "pain", "nerv")]
    sizes = [len(evaluator.scores(c)) for c in concepts]
    assert sum(sizes) > 40
    assert evaluator.kept.held <= 40 or len(evaluator.kept) == 1
    # A kept result is the same answer as a fresh one.
    again = evaluator.scores(concepts[-1])
    assert as_dict(again) == as_dict(Evaluator(generation.arrays).scores(concepts[-1]))


def test_an_unknown_node_is_a_bug_not_an_empty_answer(evaluator):
    with pytest.raises(TypeError):
        evaluator.scores(wq.Term("text", "pain"))


@pytest.mark.parametrize("text", [
    "vns", "vagal nerve stimulator for ptsd", '"chronic pain" sleep', "how common is fibro",
    "does vns reduce opioid use", "is vns right for me"])
def test_every_tree_the_planner_builds_is_scored(generation, text):
    plan = generation.expander.plan(*split_query(text))
    anchors = list(range(len(plan.concepts)))
    for node in (planner.build(plan, ["ptsd"]),
                 planner.build(plan, [], anchors[:1]),
                 planner.like(planner.build(plan, [], anchors), [("sleep", 0.5), ("pain", 1.0)])):
        assert isinstance(generation.evaluator.scores(node), Scored)


def test_the_arrays_hold_whooshs_field_lengths_and_token_spans(generation, whoosh_searcher):
    """Highlighting reads each document's tokens from the arrays: they are the analyzer's."""
    analyzer = whoosh_searcher.schema["text"].analyzer
    for docnum in range(generation.arrays.documents):
        text = whoosh_searcher.stored_fields(docnum)["text"]
        terms, starts, ends = generation.arrays.tokens(docnum)
        tokens = [(t.text, t.startchar, t.endchar)
                  for t in analyzer(text, chars=True, mode="index")]
        names = generation.arrays.text_terms
        assert [(names[t], s, e) for t, s, e in zip(terms, starts, ends, strict=True)] == tokens


def test_one_word_concepts_scored_at_build_equal_the_concept_scored_at_search(generation):
    """A plain word's concept (the stem in text, section and title) is one slice of arrays the
    build scored; it must be exactly what scoring the concept's alternatives gives."""
    prepared = Evaluator(generation.arrays)
    by_parts = Evaluator(generation.arrays)
    by_parts._one_word = lambda node: None  # score the alternatives, as any other concept
    stems = generation.arrays.fields["word"].terms
    assert len(stems) > 100
    for stem in sorted(stems)[::7]:
        node = BestOf(tuple(Term(field, stem, weight)
                            for field, weight in planner.FIELD_BOOSTS.items()))
        assert prepared._one_word(node) is not None
        got, want = prepared.scores(node), by_parts.scores(node)
        assert got.docs.tolist() == want.docs.tolist(), stem
        assert got.scores.tolist() == want.scores.tolist(), stem  # exactly, not nearly
    other = BestOf((Term("text", "pain", 1.0), Term("section", "pain", 0.5)))
    assert prepared._one_word(other) is None


def test_field_lengths_are_encoded_as_whoosh_encodes_them(tmp_path, whoosh_searcher,
                                                          seed_snippets):
    """BM25F uses Whoosh's lossy one-byte field lengths; the build asks Whoosh for them."""
    analysis = Analysis(make_analyzer())
    reader = whoosh_searcher.reader()
    lengths = {(docnum, field): len(analysis.analyze(snippet[field]).stems)
               for docnum, snippet in enumerate(seed_snippets)
               for field in ("text", "title", "section") if snippet[field]}
    encoded = store.encoded_lengths(tmp_path, set(lengths.values()) | set(range(200)))
    assert any(encoded[n] != n for n in encoded), "long lengths are lossy"
    for (docnum, field), length in lengths.items():
        assert encoded[length] == reader.doc_field_length(docnum, field), (docnum, field)
