"""Spelling suggestions from the index's own (unstemmed) words, offered only if they find more.

Only a word that is neither in the index nor a real English word (index/english.py: "knee",
"need" and "safe" are real; "migrane" and "vagas" are not) is taken for a misspelling. A
correctly spelled word is never replaced."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from whoosh.spelling import Corrector

from . import query as planner
from . import wording
from .analysis import fold
from .query import split_query

if TYPE_CHECKING:
    from .generation import Generation

BELOW = 3  # suggest a spelling when a query finds fewer hits than this
SPELL_FIELD = "spell_text"  # every unstemmed word of every snippet's text (store.make_schema)


class WordCorrector(Corrector):
    """Suggestions among the words of the spelling field, ranked as Whoosh ranks a text field's
    suggestions (by how often the word occurs as a text term, then alphabetically)."""

    def __init__(self, reader, frequency: Callable[[str], float]):
        self._reader = reader
        self._frequency = frequency

    def _suggestions(self, text, maxdist, prefix):
        for word in self._reader.terms_within(SPELL_FIELD, text, maxdist, prefix=prefix):
            frequency = self._frequency(word) or 1
            yield 0 - (maxdist + (1.0 / frequency * 0.5)), word


def correction(gen: Generation, text: str, words: list[str], found: int,
               count: Callable[[planner.Node], int]) -> str | None:
    """The query with each unknown word replaced by its closest known word, if that query
    finds more than `found` (`count` gives how many distinct snippets a query finds)."""
    suggestion = text
    changed = False
    with gen.whoosh() as searcher:
        corrector = WordCorrector(searcher.reader(), gen.arrays.text_frequency)
        for word in dict.fromkeys(words):
            # Codes and numbers ("q22", "2") are not misspelled words.
            if (len(word) < 3 or any(c.isdigit() for c in word)
                    or not gen.analysis.query_stems(word)):
                continue
            lowered = fold(word).lower()  # as the index holds it ("non-inherited" joined)
            if (searcher.doc_frequency(SPELL_FIELD, lowered) or gen.expander.knows(word)
                    or gen.english.zipf(lowered) >= wording.REAL_WORD_ZIPF):
                continue
            options = corrector.suggest(lowered, limit=1, maxdist=2)
            if options and options[0] != lowered:
                suggestion = re.sub(rf"\b{re.escape(word)}\b", options[0], suggestion)
                changed = True
    if not changed:
        return None
    suggestion = " ".join(suggestion.split())
    corrected = planner.build(gen.expander.plan(*split_query(suggestion)), [])
    if corrected is None:
        return None
    return suggestion if count(corrected) > found else None
