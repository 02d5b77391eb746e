"""Tag text with the vocabulary's conditions: labels, terms and abbreviations on word boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .seeds import Condition


def _term_pattern(term: str) -> str:
    # Spaces and hyphens inside a term match either ("post-traumatic" = "post traumatic").
    words = [re.escape(w) for w in re.split(r"[\s-]+", term.strip()) if w]
    return r"[\s-]+".join(words)


class Tagger:
    """Compiled matchers for one vocabulary; build once per index build."""

    def __init__(self, conditions: Iterable[Condition]):
        # Per condition: cheap substring anchors (the first word of each term, lowercased, and
        # each abbreviation as written) and the exact regex, run only when an anchor is present.
        self._matchers: list[tuple[str, tuple[str, ...], tuple[str, ...], re.Pattern[str]]] = []
        for condition in conditions:
            parts = []
            terms = sorted({condition.label, *condition.terms}, key=len, reverse=True)
            if terms:
                alternatives = "|".join(_term_pattern(t) for t in terms)
                parts.append(rf"(?i:\b(?:{alternatives})(?:s|es)?\b)")
            if condition.abbreviations:
                alternatives = "|".join(re.escape(a) for a in condition.abbreviations)
                parts.append(rf"\b(?:{alternatives})s?\b")
            anchors = tuple({re.split(r"[\s-]+", t.strip())[0].lower() for t in terms})
            self._matchers.append((condition.slug, anchors, tuple(condition.abbreviations),
                                   re.compile("|".join(parts))))

    def tag(self, text: str) -> list[str]:
        """The slugs of every condition the text mentions, in vocabulary order."""
        lowered = text.lower()
        return [slug for slug, anchors, abbreviations, pattern in self._matchers
                if (any(a in lowered for a in anchors) or any(a in text for a in abbreviations))
                and pattern.search(text)]

    def focus(self, title: str) -> str | None:
        """The one condition an article's title is about, or None if it names zero or several."""
        found = self.tag(title)
        return found[0] if len(found) == 1 else None
