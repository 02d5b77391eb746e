"""Turn what a user typed into a query tree of our own: concepts, expansions, fields, boosts.

Text is split into quoted phrases and words. Runs of words that name something in an expansion
group (the vocabulary's terms, the curated synonyms) become one concept whose alternatives are
the group's other phrases; every other word is a concept of its own. A snippet must match every
concept (or, relaxed, any), in its text, its section heading or its article's title. Exact
wording outranks an expansion, the text and the title outrank headings, words next to each
other as typed outrank scattered ones, and an article about a condition the query names ranks
first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_PHRASE = re.compile(r'"([^"]*)"')
# Question and filler words carry no topic; without this, "what causes X" would need "what"
# in the text. They still count inside a synonym group ("how common" = "prevalence"). "Use"
# is the one in "what is X used for", "can I use X", "opioid use": the answer says "reliance
# on opioids", and a title like "Can ... Be Used to Treat ..." is no answer to it.
FILLER_WORDS = frozenset("""
what whats how why which who whom whose where does do did doing i me my should would could
there any about tell know get got overview options use uses used using
""".split())
# Weights: exact wording vs an expansion, and the fields. The article's title says what each
# of its paragraphs is about as much as the paragraph saying it (most paragraphs of a page on
# a condition do not repeat its name).
EXPANSION_BOOST = 0.6
FIELD_BOOSTS = {"text": 1.0, "section": 0.8, "title": 1.0}
PHRASE_BOOST = 3.0
FOCUS_BOOST = 2.0
DISMAX_TIEBREAK = 0.1
COORDINATION = 0.9
# Snippets that match only words most snippets contain rank by the key words of the answers
# found above them: this many words, each weighted up to FEEDBACK_BOOST.
FEEDBACK_TERMS = 20
FEEDBACK_BOOST = 1.0
_MAX_GROUP_WORDS = 8


def split_query(text: str) -> tuple[list[str], list[str]]:
    """Plain words and quoted phrases. Any other character is just text (an unclosed quote too)."""
    phrases = [p.strip() for p in _PHRASE.findall(text) if p.strip()]
    rest = _PHRASE.sub(" ", text).replace('"', " ")
    words = re.findall(r"\w+", rest)
    return words, [" ".join(re.findall(r"\w+", p)) for p in phrases if re.search(r"\w", p)]


@dataclass
class Concept:
    """One thing the user asked for: the stems as typed, and alternative stem sequences."""

    exact: tuple[str, ...]
    expansions: list[tuple[str, ...]] = field(default_factory=list)
    phrase: bool = False  # typed in quotes: no expansion, words must be adjacent


@dataclass
class Plan:
    concepts: list[Concept]
    conditions: list[str]  # conditions the text names (for the focus boost)
    marks: set[tuple[str, ...]]  # stem sequences to highlight where they occur in full

    @property
    def empty(self) -> bool:
        return not self.concepts


class Expander:
    """Expansion groups keyed by their stemmed phrases, built once per index generation."""

    def __init__(self, groups: list[dict[str, Any]], analyze):
        self._analyze = analyze
        self._by_stems: dict[tuple[str, ...], list[int]] = {}
        self._groups: list[tuple[list[tuple[str, ...]], str | None]] = []
        for number, group in enumerate(groups):
            variants = list(dict.fromkeys(
                stems for stems in (tuple(analyze(p)) for p in group["phrases"]) if stems))
            self._groups.append((variants, group.get("condition")))
            for stems in variants:
                self._by_stems.setdefault(stems, []).append(number)

    def plan(self, words: list[str], phrases: list[str]) -> Plan:
        concepts: list[Concept] = []
        conditions: list[str] = []
        typed = [(stem, w.lower() in FILLER_WORDS) for w in words for stem in self._analyze(w)]
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
                if typed[i][1]:  # a filler word on its own
                    i += 1
                    continue
            expansions: list[tuple[str, ...]] = []
            for number in self._by_stems.get(run, []):
                variants, condition = self._groups[number]
                expansions += [v for v in variants if v != run and v not in expansions]
                if condition and condition not in conditions:
                    conditions.append(condition)
            concepts.append(Concept(run, expansions))
            i += size
        for phrase in phrases:
            phrase_stems = tuple(self._analyze(phrase))
            if phrase_stems:
                concepts.append(Concept(phrase_stems, phrase=True))
        marks = {seq for c in concepts for seq in (c.exact, *c.expansions)}
        return Plan(concepts, conditions, marks)

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


def build(plan: Plan, relaxed: bool, focus: list[str],
          common: frozenset[int] = frozenset()) -> Node | None:
    """The query tree for a plan: all concepts (any, when relaxed), with optional boosts.

    When relaxed, concepts at the positions in `common` (words most snippets contain, like
    "VNS" in articles about VNS) cannot make a partial match on their own: they only add to
    the score of snippets that match another concept."""
    if plan.empty:
        return None
    parts = [_concept_node(c) for c in plan.concepts]
    if len(parts) == 1:
        core: Node = parts[0]
    elif relaxed:  # a coordination bonus: snippets with more of the concepts rank higher
        telling = [p for i, p in enumerate(parts) if i not in common]
        core = AnyOf(tuple(telling or parts), coordination=COORDINATION)
        for i in sorted(common) if telling else ():
            core = Boost(core, parts[i])
    else:
        core = AllOf(tuple(parts))
    typed = [s for c in plan.concepts if not c.phrase for s in c.exact]
    if len(typed) > 1:
        core = Boost(core, Phrase(tuple(typed), PHRASE_BOOST))
    if focus:
        core = Boost(core, AnyOf(tuple(Term("focus", slug, FOCUS_BOOST) for slug in focus)))
    return core


def like(core: Node, key_terms: list[tuple[str, float]]) -> Node:
    """`core`, scoring higher the snippets whose text has some of `key_terms` (word, weight):
    pseudo-relevance feedback, for ranking snippets that share only a common word."""
    if not key_terms:
        return core
    return Boost(core, AnyOf(tuple(Term("text", term, FEEDBACK_BOOST * weight)
                                   for term, weight in key_terms)))
