"""Turn what a user typed into a query tree of our own: concepts, expansions, fields, boosts.

Text is split into quoted phrases and words. Runs of words that name something in an expansion
group (the vocabulary's terms, the curated synonyms, the lay terms) become one concept whose
alternatives are the group's other phrases; every other word is a concept of its own, with the
other members of its word family as alternatives. Each concept has a role in its question (a
subject, the kind of question, or an everyday word; index/wording.py) that decides whether an
answer must match it (index/retrieval.py). A snippet matches a concept in its text, its
section heading or its article's title. Exact wording outranks an expansion, the text and the
title outrank headings, words next to each other as typed outrank scattered ones, an article
about a condition the query names ranks first, and a heading of the question's kind ranks up.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import analysis, wording

_PHRASE = re.compile(r'"([^"]*)"')
# Weights: exact wording vs an expansion, and the fields. The article's title says what each
# of its paragraphs is about as much as the paragraph saying it (most paragraphs of a page on
# a condition do not repeat its name).
EXPANSION_BOOST = 0.6
FIELD_BOOSTS = {"text": 1.0, "section": 0.8, "title": 1.0}
PHRASE_BOOST = 3.0
FOCUS_BOOST = 2.0
# A section whose heading names the kind of question asked ("Treatment" for "how is X
# treated"): this much of the heading word's score is added.
QUESTION_TYPE_BOOST = 0.5
DISMAX_TIEBREAK = 0.1
COORDINATION = 0.9
# Snippets that match only words most snippets contain rank by the key words of the answers
# found above them: this many words, each weighted up to FEEDBACK_BOOST.
FEEDBACK_TERMS = 20
FEEDBACK_BOOST = 1.0
_MAX_GROUP_WORDS = 8

# What a concept is to its question (see index/wording.py).
SUBJECT = "subject"  # what the question is about: an answer must match it
GENERIC = "generic"  # an everyday word ("lower", "episode"): it ranks, it does not decide
KIND = "kind"  # the kind of question ("treated", "causes"): it ranks sections


def split_query(text: str) -> tuple[list[str], list[str]]:
    """Plain words and quoted phrases. Any other character is just text (an unclosed quote too)."""
    phrases = [p.strip() for p in _PHRASE.findall(text) if p.strip()]
    rest = _PHRASE.sub(" ", text).replace('"', " ")
    words = analysis.QUERY_WORD.findall(rest)
    return words, [" ".join(analysis.QUERY_WORD.findall(p)) for p in phrases
                   if re.search(r"\w", p)]


@dataclass
class Concept:
    """One thing the user asked for: the stems as typed, and alternative stem sequences."""

    exact: tuple[str, ...]
    expansions: list[tuple[str, ...]] = field(default_factory=list)
    phrase: bool = False  # typed in quotes: no expansion, words must be adjacent
    label: str = ""  # the words as typed
    role: str = SUBJECT
    # How common its rarest word is in English (Zipf); a condition's name counts as rare.
    rarity: float = 9.0
    node: Node | None = field(default=None, repr=False, compare=False)  # its tree, once built

    @property
    def rare(self) -> bool:
        return self.rarity < wording.RARE_ZIPF


@dataclass
class Plan:
    concepts: list[Concept]
    conditions: list[str]  # conditions the text names (for the focus boost)
    marks: set[tuple[str, ...]]  # stem sequences to highlight where they occur in full
    sections: list[str] = field(default_factory=list)  # heading stems of the question's kind

    @property
    def empty(self) -> bool:
        return not self.concepts

    def without(self, dropped: list[int]) -> Plan:
        return Plan([c for i, c in enumerate(self.concepts) if i not in dropped],
                    self.conditions, self.marks, self.sections)


class Expander:
    """Expansion groups keyed by their stemmed phrases, built once per index generation.

    `known` tells whether some snippet has a word, `known_stem` whether the index has a stem,
    `zipf` how common a word is in English."""

    def __init__(self, groups: list[dict[str, Any]], analyze,
                 known: Callable[[str], bool] = lambda word: False,
                 known_stem: Callable[[str], bool] = lambda stem: False,
                 zipf: Callable[[str], float] = lambda word: 0.0):
        # Query words recur: their stems are remembered (as tuples: callers must not mutate).
        self._analyze = functools.lru_cache(maxsize=1 << 16)(lambda text: tuple(analyze(text)))
        self._known = known
        self._known_stem = known_stem
        self._zipf = functools.lru_cache(maxsize=1 << 16)(zipf)
        self._family = functools.lru_cache(maxsize=1 << 14)(self._family_of)
        self._by_stems: dict[tuple[str, ...], list[int]] = {}
        self._groups: list[tuple[list[tuple[str, ...]], str | None]] = []
        for number, group in enumerate(groups):
            variants = self._stemmed(group["phrases"])
            self._groups.append((variants, group.get("condition")))
            for stems in self._stemmed(group.get("triggers") or group["phrases"]):
                self._by_stems.setdefault(stems, []).append(number)
        self._kinds: dict[tuple[str, ...], str] = {}
        self._kind_sections: dict[str, list[str]] = {}
        for kind, (triggers, headings) in wording.QUESTION_TYPES.items():
            for stems in self._stemmed(triggers):
                self._kinds.setdefault(stems, kind)
            self._kind_sections[kind] = [s for h in headings for s in self._analyze(h)]

    def _stemmed(self, phrases) -> list[tuple[str, ...]]:
        return list(dict.fromkeys(
            stems for stems in (tuple(self._analyze(p)) for p in phrases) if stems))

    def plan(self, words: list[str], phrases: list[str]) -> Plan:
        concepts: list[Concept] = []
        conditions: list[str] = []
        sections: list[str] = []
        typed = [(stem, w) for w in words for stem in self._analyze(w)]
        stems = [stem for stem, _ in typed]
        i = 0
        while i < len(stems):
            # Longest run of words starting here that some group knows.
            for size in range(min(_MAX_GROUP_WORDS, len(stems) - i), 0, -1):
                run = tuple(stems[i:i + size])
                if run in self._by_stems:
                    break
            else:
                size, run = 1, (stems[i],)
                if typed[i][1].lower() in wording.FILLER_WORDS:  # a filler word on its own
                    i += 1
                    continue
            expansions: list[tuple[str, ...]] = []
            named = False
            for number in self._by_stems.get(run, []):
                variants, condition = self._groups[number]
                expansions += [v for v in variants if v != run and v not in expansions]
                if condition:
                    named = True
                    if condition not in conditions:
                        conditions.append(condition)
            typed_words = [w for _, w in typed[i:i + size]]
            if size == 1:  # safe / safety: word families the stemmer leaves apart
                expansions += [(s,) for s in self._family(
                    analysis.fold(typed_words[0]).lower(), run[0]) if (s,) not in expansions]
            concept = Concept(run, expansions, label=" ".join(typed_words))
            self._classify(concept, typed_words, named, sections)
            concepts.append(concept)
            i += size
        for phrase in phrases:
            phrase_stems = tuple(self._analyze(phrase))
            if phrase_stems:
                concept = Concept(phrase_stems, phrase=True, label=phrase)
                self._classify(concept, phrase.split(), False, sections)
                concepts.append(concept)
        marks = {seq for c in concepts for seq in (c.exact, *c.expansions)}
        return Plan(concepts, conditions, marks, sections)

    def _classify(self, concept: Concept, typed_words: list[str], named: bool,
                  sections: list[str]) -> None:
        """The concept's role: a condition's name or a word English seldom uses is a subject;
        the words of a kind of question say its kind; other everyday words are generic."""
        kind = None if concept.phrase else self._kinds.get(concept.exact)
        rarity = min((self._zipf(analysis.fold(w)) for w in typed_words if not w.isdigit()),
                     default=9.0)
        concept.rarity = 0.0 if named else rarity
        if kind is not None:
            concept.role = KIND
            sections += [s for s in self._kind_sections[kind] if s not in sections]
        elif not named and rarity >= wording.GENERIC_ZIPF:
            concept.role = GENERIC

    def _family_of(self, word: str, stem: str) -> tuple[str, ...]:
        return tuple(wording.family_stems(word, stem, self._stem_in_index,
                                          lambda candidate: self._zipf(candidate) > 0))

    def _stem_in_index(self, word: str) -> str | None:
        stems = self._analyze(word)
        if len(stems) != 1 or not self._known_stem(stems[0]):
            return None  # cheap: most made-up family members have no stem in the index
        return stems[0] if self._known(word) else None

    def knows(self, word: str) -> bool:
        """Whether a typed word is part of some expansion group (so not a misspelling)."""
        stems = tuple(self._analyze(word))
        return bool(stems) and any(stems[0] in variant for variant in self._by_stems)


# -- the query tree the evaluator runs (index/evaluate.py) --------------------------------

@dataclass(frozen=True)
class Term:
    """A stem in one field, its score times `weight`."""

    field: str
    stem: str
    weight: float = 1.0


@dataclass(frozen=True)
class Phrase:
    """Stems next to each other, in this order, in the text; scored as the sum of its stems'
    scores, times `weight`."""

    stems: tuple[str, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class AllWords:
    """Every stem in one field, in any order (headings and titles have no positions); the sum
    of their scores, times `weight`."""

    field: str
    stems: tuple[str, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class BestOf:
    """One concept: each snippet's best alternative, plus `tiebreak` times its others."""

    alternatives: tuple[Node, ...]
    tiebreak: float = DISMAX_TIEBREAK


@dataclass(frozen=True)
class AllOf:
    """Snippets that match every part; the sum of the parts' scores."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """Snippets that match some part; the sum of the parts they match. With `coordination`,
    each further part matched adds a bonus (Whoosh's SQR coordination, counting parts)."""

    parts: tuple[Node, ...]
    coordination: float | None = None


@dataclass(frozen=True)
class Boost:
    """What `core` matches, with `extra`'s score added where `extra` matches too."""

    core: Node
    extra: Node


@dataclass(frozen=True)
class Filter:
    """Which snippets may be returned at all: any of the conditions, any of the sources, at
    most the reading grade (in tenths). Empty means no restriction."""

    conditions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    max_grade_tenths: int | None = None

    @property
    def empty(self) -> bool:
        return not (self.conditions or self.sources or self.max_grade_tenths is not None)


Node = Term | Phrase | AllWords | BestOf | AllOf | AnyOf | Boost


def _match(stems: tuple[str, ...], fieldname: str, weight: float) -> Node:
    if len(stems) == 1:
        return Term(fieldname, stems[0], weight)
    if fieldname != "text":  # headings are indexed without positions: all words, any order
        return AllWords(fieldname, stems, weight)
    return Phrase(stems, weight)


def _concept_node(concept: Concept) -> Node:
    if concept.phrase:  # typed in quotes: these words, in this order, in the paragraph itself
        return _match(concept.exact, "text", 1.0)
    # A phrase scores about the sum of its words, so a longer expansion is scaled down to the
    # length of what was typed: "VNS" must not lose to its own expansion.
    alternatives = [(concept.exact, 1.0)] + [
        (e, EXPANSION_BOOST * min(1.0, len(concept.exact) / len(e))) for e in concept.expansions]
    # The best way a snippet matches the concept counts, not the sum of every way: a paragraph
    # saying both "vagus nerve stimulation" and "(VNS)" is not twice as relevant.
    return BestOf(tuple(_match(stems, fieldname, weight * field_boost)
                        for stems, weight in alternatives
                        for fieldname, field_boost in FIELD_BOOSTS.items()))


def build(plan: Plan, focus: list[str], anchors: list[int] | None = None) -> Node | None:
    """The query tree for a plan: every concept must match; or, with `anchors`, at least one
    of the concepts at those positions must, and every concept matched adds to the score, the
    more of them the more (a coordination bonus). The words as typed next to each other, an
    article about a condition the query names, a section heading of the question's kind: each
    adds."""
    if plan.empty:
        return None
    parts = [concept_node(c) for c in plan.concepts]
    if anchors is None:
        core: Node = parts[0] if len(parts) == 1 else AllOf(tuple(parts))
    else:
        if not anchors:
            return None
        held = [parts[i] for i in anchors]
        core = held[0] if len(held) == 1 else AnyOf(tuple(held), coordination=COORDINATION)
        others = [p for i, p in enumerate(parts) if i not in anchors]
        if others:
            core = Boost(core, AnyOf(tuple(others), coordination=COORDINATION))
    typed = [s for c in plan.concepts if not c.phrase for s in c.exact]
    if len(typed) > 1:
        core = Boost(core, Phrase(tuple(typed), PHRASE_BOOST))
    if focus:
        core = Boost(core, AnyOf(tuple(Term("focus", slug, FOCUS_BOOST) for slug in focus)))
    if plan.sections:  # one node per kind of question, kept by the evaluator across queries
        core = Boost(core, BestOf(tuple(Term("section", stem, QUESTION_TYPE_BOOST)
                                        for stem in plan.sections), tiebreak=0.0))
    return core


def concept_node(concept: Concept) -> Node:
    """One concept's query tree (built once per plan: every tree of a search shares it)."""
    if concept.node is None:
        concept.node = _concept_node(concept)
    return concept.node


def like(core: Node, key_terms: list[tuple[str, float]]) -> Node:
    """`core`, scoring higher the snippets whose text has some of `key_terms` (word, weight):
    pseudo-relevance feedback, for ranking snippets that share only a common word."""
    if not key_terms:
        return core
    return Boost(core, AnyOf(tuple(Term("text", term, FEEDBACK_BOOST * weight)
                                   for term, weight in key_terms)))
