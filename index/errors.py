"""Errors the index pipeline raises; each names where the problem is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedProblem:
    """One thing wrong with one input file, at a line where that is known."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"


class SeedError(Exception):
    """The seeds (or a pages file) are invalid; nothing was built."""

    def __init__(self, problems: list[SeedProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class BuildLockedError(Exception):
    """Another build holds the index directory's lock."""


class IndexUnavailable(Exception):
    """There is no usable index generation (missing, dangling pointer, or damaged)."""
