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
        for caveat in caveats:
            if caveat.scope != "snippet":
                continue
            patterns = [re.compile(p, re.IGNORECASE) for p in caveat.patterns]
            context = [re.compile(p, re.IGNORECASE) for p in caveat.context_patterns]
            self._rules.append((caveat, set(caveat.conditions), set(caveat.sources),
                                set(caveat.snippets), patterns, context))

    def match(self, snippet_id: str, source_id: str, conditions: Iterable[str],
              text: str) -> list[str]:
        """Ids of the caveats that apply, in catalogue order."""
        conditions = set(conditions)
        found = []
        for caveat, want_conditions, want_sources, want_snippets, patterns, context in self._rules:
            if want_conditions and not want_conditions & conditions:
                continue
            if want_sources and source_id not in want_sources:
                continue
            if want_snippets and snippet_id not in want_snippets:
                continue
            if patterns and not any(p.search(text) for p in patterns):
                continue
            if not all(p.search(text) for p in context):
                continue
            found.append(caveat.id)
        return found
