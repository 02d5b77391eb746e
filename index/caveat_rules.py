"""Attach catalogue caveats to snippets at build time, so serving does no rule matching.

A snippet caveat's `applies_to` has up to four rule kinds. Values within a kind are
alternatives (any may match); the kinds given must all match. So
``conditions: [fibromyalgia], patterns: ['\\bVNS\\b']`` means "mentions fibromyalgia and VNS".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .seeds import Caveat


class CaveatMatcher:
    def __init__(self, caveats: Iterable[Caveat]):
        self._rules = []
        for caveat in caveats:
            if caveat.scope != "snippet":
                continue
            patterns = [re.compile(p, re.IGNORECASE) for p in caveat.patterns]
            self._rules.append((caveat, set(caveat.conditions), set(caveat.sources),
                                set(caveat.snippets), patterns))

    def match(self, snippet_id: str, source_id: str, conditions: Iterable[str],
              text: str) -> list[str]:
        """Ids of the caveats that apply, in catalogue order."""
        conditions = set(conditions)
        found = []
        for caveat, want_conditions, want_sources, want_snippets, patterns in self._rules:
            if want_conditions and not want_conditions & conditions:
                continue
            if want_sources and source_id not in want_sources:
                continue
            if want_snippets and snippet_id not in want_snippets:
                continue
            if patterns and not any(p.search(text) for p in patterns):
                continue
            found.append(caveat.id)
        return found
