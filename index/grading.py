"""Reading grade of a snippet: the Flesch-Kincaid grade level, via textstat (offline)."""

from __future__ import annotations

import textstat


def reading_grade(text: str) -> float:
    """Flesch-Kincaid grade level rounded to one decimal; never below 0."""
    return max(0.0, round(float(textstat.flesch_kincaid_grade(text)), 1))
