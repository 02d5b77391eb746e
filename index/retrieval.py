"""Retrieval: plan -> candidates -> scores -> collapse -> page, over one generation.

User text is never handed to a query parser: words and quoted phrases become our own query
tree (index/query.py), so no input can raise a parser error. Snippets with every concept come
first; while they are fewer than a page, snippets with the question's subject fill it (and
`match` says "any"). A subject nothing matches empties the answer (`not_found` says which).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from . import query as planner
from . import suggest, wording
from .evaluate import Scored, positions_in
from .model import Hit, SearchQuery, SearchResult
from .query import Filter, split_query

if TYPE_CHECKING:
    from .generation import Generation

FILL_BELOW = 10  # fewer all-concept matches than this: partial matches fill the list
# Questions of up to this many concepts have no background words: each one counts.
SHORT_QUESTION = 3
# A question's core subjects are its rarest words, within this many Zipf units of the rarest.
SUBJECT_SPREAD = 1.0
# A filled result scores at most this fraction of the lowest of the results it follows.
FILL_SCALE = 0.9
# A problem-list code typed into q: ICD-10-CM (letter, digit, digit or letter, .subcode).
_ICD_IN_TEXT = re.compile(r"(?<![\w.])([A-TV-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)(?![\w.])")

Ranked = list[tuple[int, float]]  # (document number, score), best first


def search(gen: Generation, q: SearchQuery) -> SearchResult:
    words, phrases = split_query(q.text)
    wanted = Filter(q.conditions, q.sources,
                    None if q.max_grade is None else round(q.max_grade * 10))
    allowed = allowed_by(gen, wanted)
    if not q.text:
        return _browse(gen, q, allowed)
    if not words and not phrases:  # "*", "?", an emoji: nothing to search for
        return SearchResult([], 0, words, phrases)
    if allowed is not None and not allowed.any():
        return SearchResult([], 0, words, phrases)
    plan = gen.expander.plan(*split_query(_codes_as_words(gen, q.text)))
    focus = list(dict.fromkeys([*plan.conditions, *q.conditions]))
    result = _run(gen, q, plan, focus, allowed)
    result.words, result.phrases = words, phrases
    if result.total < suggest.BELOW:
        result.suggestion = suggest.correction(
            gen, q.text, words, result.total,
            lambda node: collapsed(gen, gen.evaluator.scores(node, allowed), 1)[1])
    return result


def allowed_by(gen: Generation, wanted: Filter) -> np.ndarray | None:
    """The boolean mask of documents a filter lets through (None: no filter), kept per
    generation."""
    if wanted.empty:
        return None
    mask = gen.filters.get(wanted)
    if mask is None:
        arrays = gen.arrays
        mask = np.ones(arrays.documents, dtype=bool)
        for field, values in (("conditions", wanted.conditions), ("source_id", wanted.sources)):
            if values:
                mask &= _any_keyword(gen, field, values)
        if wanted.max_grade_tenths is not None:
            mask &= arrays.grades <= wanted.max_grade_tenths
        mask = gen.filters.put(wanted, mask)
    return mask


def _any_keyword(gen: Generation, field: str, values) -> np.ndarray:
    postings = gen.arrays.fields[field]
    mask = np.zeros(gen.arrays.documents, dtype=bool)
    for value in values:
        number = postings.number(value)
        if number is not None:
            mask[postings.postings(number)[0]] = True
    return mask


def _codes_as_words(gen: Generation, text: str) -> str:
    """An ICD-10-CM code typed into q (M79.7) stands for its condition's label."""
    def label(match: re.Match) -> str:
        slugs = gen.conditions_for_code("icd10cm", match.group(1))
        labels = [c["label"] for c in gen.conditions if c["slug"] in slugs]
        return f" {' '.join(labels)} " if labels else match.group(0)
    return _ICD_IN_TEXT.sub(label, text)


def _run(gen: Generation, q: SearchQuery, plan: planner.Plan, focus: list[str],
         allowed: np.ndarray | None) -> SearchResult:
    """Right or nothing. When no snippet matches one of the question's core subjects, the
    answer is empty (as it is for a short question of everyday words one of which nothing matches:
    "lower back pain" is not about "lower"), and the words that found nothing are reported.
    Otherwise every concept first; while that is fewer than a page, snippets with one of the
    question's subjects and some of its other words fill it (never snippets that share only
    everyday words). Whatever the page holds is in the order of one score, the one shown."""
    if plan.empty:  # only stop and filler words
        return SearchResult([], 0)
    found = [gen.evaluator.scores(planner.concept_node(c), allowed) for c in plan.concepts]
    missing = {i for i, matches in enumerate(found) if not len(matches)}
    not_found = [plan.concepts[i].label for i in sorted(missing)]
    core = _core_subjects(plan)
    short = len(plan.concepts) <= SHORT_QUESTION
    # In a longer question, a word that is no English word and in no snippet is taken for a
    # typo ("couldnt", "hemroids"), not for its subject; it gets a suggestion, not the blame.
    typos = set() if short else {i for i in missing if plan.concepts[i].rarity
                                 < wording.REAL_WORD_ZIPF and plan.concepts[i].rarity > 0}
    uncovered = missing.intersection(core).difference(typos)
    # A short question is empty when one of its core subjects found nothing; a longer one
    # (background around the question) when half of them or more did.
    if (len(missing) == len(plan.concepts)
            or (uncovered and (short or 2 * len(uncovered) >= len(core)))
            or (not core and short and any(
                plan.concepts[i].role == planner.GENERIC for i in missing))):
        return SearchResult([], 0, not_found=not_found)
    # What is left: the words that found nothing are dropped.
    asked = plan.without(sorted(missing))
    found = [matches for i, matches in enumerate(found) if i not in missing]
    wanted = q.offset + q.limit
    strict = planner.build(asked, focus)
    scored = gen.evaluator.scores(strict, allowed)
    # The same paragraph in several sources is one result; the others go in also_in.
    ranked, total = collapsed(gen, scored, wanted)
    strict_total = total
    anchors = _anchors(asked, short)
    if total < FILL_BELOW and anchors and len(asked.concepts) > 1:
        # A subject in most snippets ("VNS" in articles about VNS) anchors a result only
        # when the others found too few; those rank by the key words of the answers above.
        telling = [i for i in anchors if not _common(gen, asked.concepts[i])]
        if telling:
            fill = gen.evaluator.scores(planner.build(asked, focus, telling), allowed)
            scored = _below(scored, fill)
            ranked, total = collapsed(gen, scored, wanted)
        if total < FILL_BELOW and len(telling) < len(anchors) and (total or not telling):
            fill = planner.like(planner.build(asked, focus, anchors),
                                _key_terms(gen, asked, ranked))
            scored = _below(scored, gen.evaluator.scores(fill, allowed))
            ranked, total = collapsed(gen, scored, wanted)
    marks = _marks(gen, asked.marks)
    page = ranked[q.offset:wanted]
    records = gen.records([doc for doc, _ in page])
    docs = np.array([doc for doc, _ in page], dtype=np.int64)
    has = [positions_in(matches.docs, docs)[0] for matches in found]
    hits = [Hit(doc, record, round(score, 4), _spans(gen, doc, marks),
                tuple(c.label for c, mask in zip(asked.concepts, has, strict=True) if mask[n]))
            for n, ((doc, score), record) in enumerate(zip(page, records, strict=True))]
    return SearchResult(hits, total, match="all" if total == strict_total else "any",
                        not_found=not_found)


def _below(found: Scored, more: Scored) -> Scored:
    """`found`, and the other matches of `more` scaled to score below every one of `found`:
    a fill never sits above what it fills, and the page is in the order of the scores shown."""
    extra = ~positions_in(found.docs, more.docs)[0]
    if not extra.any():
        return found
    docs, scores = more.docs[extra], more.scores[extra]
    if len(found):
        floor = float(found.scores.min()) * FILL_SCALE
        top = float(scores.max())
        if top > floor:
            scores = scores * (floor / top)
    order = np.argsort(np.concatenate([found.docs, docs]), kind="stable")
    return Scored(np.concatenate([found.docs, docs])[order],
                  np.concatenate([found.scores, scores])[order])


def _core_subjects(plan: planner.Plan) -> list[int]:
    """Positions of what a question is about: its rarest subjects (a condition's name, or
    the words English uses least, within SUBJECT_SPREAD of the rarest). "Mild intermittent
    asthma" is about asthma and intermittent, not "mild"."""
    subjects = [i for i, c in enumerate(plan.concepts) if c.role == planner.SUBJECT]
    if not subjects:
        return []
    rarest = min(plan.concepts[i].rarity for i in subjects)
    return [i for i in subjects if plan.concepts[i].rarity <= rarest + SUBJECT_SPREAD]


def _anchors(plan: planner.Plan, short: bool) -> list[int]:
    """Positions of the concepts of which a filled result must match one: a short
    question's subjects; a longer one's core subjects."""
    if short:
        return [i for i, c in enumerate(plan.concepts) if c.role == planner.SUBJECT]
    return _core_subjects(plan)


def _common(gen: Generation, concept: planner.Concept) -> bool:
    """Whether the concept's typed words are in most snippets."""
    text = gen.arrays.fields["text"]
    return all(text.frequency(stem) > gen.arrays.documents / 2 for stem in concept.exact)


def _key_terms(gen: Generation, plan: planner.Plan, found: Ranked) -> list[tuple[str, float]]:
    """The words that most distinguish the snippets found so far from the rest of the
    index, by the Bo1 model (Whoosh's key terms, normalised to weights up to 1), other than
    those the query already scores on their own (typed words, one-word alternatives). A word
    of a longer expansion ("electrical" in "electrical stimulation of the vagus nerve") can be
    one."""
    searched: set[str] = set()
    for concept in plan.concepts:
        searched.update(concept.exact)
        searched.update(e[0] for e in concept.expansions if len(e) == 1)
    arrays = gen.arrays
    found_terms = [arrays.tokens(doc)[0] for doc, _ in found]
    if not found_terms or not sum(len(t) for t in found_terms):
        return []
    counts = np.bincount(np.concatenate(found_terms))
    numbers = np.flatnonzero(counts)
    documents = arrays.documents
    scored, best = [], 0.0
    for number, weight in zip(numbers.tolist(), counts[numbers].tolist(), strict=True):
        f = float(arrays.text_frequencies[number]) / documents
        score = weight * math.log((1.0 + f) / f, 2) + math.log(1.0 + f, 2)
        best = max(best, score)
        scored.append((score, arrays.text_terms[number]))
    f = best / documents
    norm = (best * math.log((1.0 + f) / f) + math.log(1.0 + f)) / math.log(2.0) if best else 0.0
    ranked = sorted(((score / norm, term) for score, term in scored),
                    key=lambda item: (-item[0], item[1]))
    wanted = planner.FEEDBACK_TERMS + len(searched)
    return [(t, w) for w, t in ranked[:wanted] if t not in searched][:planner.FEEDBACK_TERMS]


def collapsed(gen: Generation, scored: Scored, limit: int) -> tuple[Ranked, int]:
    """Top (document, score) with one per duplicate group, and the distinct total.

    The best are ordered by score (rounded, so float noise never reorders) and position, so
    ties are cut the same way on every page; the first of each duplicate group stands for it."""
    if not len(scored):
        return [], 0
    groups = gen.arrays.dup_groups[scored.docs]
    # Most snippets have no duplicate: only the groups of those that do need counting.
    shared = gen.arrays.has_duplicates[scored.docs]
    total = len(scored) - int(shared.sum()) + len(np.unique(groups[shared]))
    wanted = min(limit, total)
    take = 2 * wanted + 10  # duplicates of the best can push some of them further down
    docs, scores = scored.docs, scored.scores
    # Rounded to 6 places, so float noise never reorders equal scores (as Python's round
    # would, but for a whole array at once).
    rounded = np.round(scores, 6)
    while True:
        if take < len(scores):
            # The best, widened to every score that rounds the same as the last of them, so
            # ties are still cut by position.
            picked = np.flatnonzero(
                rounded >= np.partition(rounded, len(scores) - take)[len(scores) - take])
        else:
            picked = np.arange(len(scores))
        ranked = picked[np.lexsort((docs[picked], -rounded[picked]))]
        # The first of each duplicate group in that order stands for it.
        _, first = np.unique(groups[ranked], return_index=True)
        firsts = ranked[np.sort(first)][:limit]
        if len(firsts) >= wanted or len(picked) == len(scores):
            return list(zip(docs[firsts].tolist(), scores[firsts].tolist(), strict=True)), total
        take *= 4


def _marks(gen: Generation, marks: set[tuple[str, ...]]) -> list[tuple[int, ...]]:
    """Stem sequences to mark, as text term numbers (a sequence with a stem the text never
    has cannot occur)."""
    text = gen.arrays.fields["text"]
    numbered = []
    for seq in marks:
        numbers = [text.number(stem) for stem in seq]
        if None not in numbers:
            numbered.append(tuple(numbers))
    return numbered


def _spans(gen: Generation, doc: int, marks: list[tuple[int, ...]]) -> tuple[tuple[int, int], ...]:
    """Character spans of the tokens where a marked sequence (a word, or a phrase or
    expansion in full) occurs in the document's text."""
    if not marks:
        return ()
    terms, starts, ends = gen.arrays.tokens(doc)
    marked = np.zeros(len(terms), dtype=bool)
    for seq in marks:
        if len(seq) == 1:
            marked |= terms == seq[0]
            continue
        places = len(terms) - len(seq) + 1
        if places <= 0:
            continue
        found = terms[:places] == seq[0]
        for k in range(1, len(seq)):
            found &= terms[k:k + places] == seq[k]
        for k in range(len(seq)):
            marked[k:k + places] |= found
    at = np.flatnonzero(marked)
    return tuple(zip(starts[at].tolist(), ends[at].tolist(), strict=True))


def _browse(gen: Generation, q: SearchQuery, allowed: np.ndarray | None) -> SearchResult:
    """No query text: snippets that mention a requested condition in an article about it
    first, then those that mention it elsewhere, then those only in an article about it;
    each group in source and paragraph order."""
    arrays = gen.arrays
    docs = np.flatnonzero(allowed) if allowed is not None else np.arange(arrays.documents)
    if q.conditions:
        mentioning = _any_keyword(gen, "mentions", q.conditions)[docs]
        focused = _any_keyword(gen, "focus", q.conditions)[docs]
        docs = docs[np.lexsort((arrays.positions[docs], ~focused, ~mentioning))]
    else:
        docs = docs[np.argsort(arrays.positions[docs], kind="stable")]
    # Duplicates collapse to their first appearance in this order.
    _, first = np.unique(arrays.dup_groups[docs], return_index=True)
    distinct = docs[np.sort(first)]
    page = distinct[q.offset:q.offset + q.limit].tolist()
    hits = [Hit(doc, record, None) for doc, record in zip(page, gen.records(page), strict=True)]
    return SearchResult(hits, len(distinct))
