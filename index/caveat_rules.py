"""Attach catalogue caveats to snippets at build time, so serving does no rule matching.

A snippet caveat's `applies_to` has up to five rule kinds. Values within `conditions`,
`sources`, `snippets` and `patterns` are alternatives (any may match); every one of
`context_patterns` must be found; and the kinds given must all match. So
``conditions: [fibromyalgia], context_patterns: ['\\bVNS\\b']`` means "mentions fibromyalgia
and VNS": a caveat about VNS stays off pages that never mention it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .seeds import Caveat


class CaveatMatcher:
    def __init__(self, caveats: Iterable[Caveat]):
        self._rules = []
        self._context: dict[str, re.Pattern[str]] = {}
        for caveat in caveats:
            if caveat.scope != "snippet":
                continue
            # A rule's alternatives as one regex: one scan of the text instead of one each.
            patterns = (re.compile("|".join(f"(?:{p})" for p in caveat.patterns), re.IGNORECASE)
                        if caveat.patterns else None)
            self._rules.append((caveat, set(caveat.conditions), set(caveat.sources),
                                set(caveat.snippets), patterns, caveat.context_patterns))
            for pattern in caveat.context_patterns:
                self._context.setdefault(pattern, re.compile(pattern, re.IGNORECASE))

    def match(self, snippet_id: str, source_id: str, conditions: Iterable[str],
              text: str) -> list[str]:
        """Ids of the caveats that apply, in catalogue order."""
        conditions = set(conditions)
        found = []
        context_found: dict[str, bool] = {}  # many rules share one context pattern: scan once
        for caveat, want_conditions, want_sources, want_snippets, patterns, context in self._rules:
            if want_conditions and not want_conditions & conditions:
                continue
            if want_sources and source_id not in want_sources:
                continue
            if want_snippets and snippet_id not in want_snippets:
                continue
            if patterns is not None and not patterns.search(text):
                continue
            if not all(self._context_matches(p, text, context_found) for p in context):
                continue
            found.append(caveat.id)
        return found

    def _context_matches(self, pattern: str, text: str, seen: dict[str, bool]) -> bool:
        if pattern not in seen:
            seen[pattern] = self._context[pattern].search(text) is not None
        return seen[pattern]
